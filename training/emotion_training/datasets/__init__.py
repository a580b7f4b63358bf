"""Dataset loaders, each written against the set's published layout.

Every loader returns plain ``Sample`` records (path, label, speaker/actor, optional paired media)
so that training code does not depend on a particular set.
"""
from .common import Sample, UnreadableImageError, read_face
from .cremad import load_cremad, parse_cremad_name
from .csv_manifest import load_csv_manifest
from .emodb import load_emodb, parse_emodb_name
from .folders import load_audio_folders, load_image_folders
from .ravdess import load_ravdess, parse_ravdess_name
from .semaine import SemaineSession, load_semaine

__all__ = ['Sample', 'UnreadableImageError', 'read_face', 'load_image_folders',
           'load_audio_folders', 'load_emodb', 'parse_emodb_name', 'load_cremad',
           'parse_cremad_name', 'load_ravdess', 'parse_ravdess_name', 'load_semaine',
           'SemaineSession', 'load_csv_manifest']

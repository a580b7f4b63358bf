"""Dataset loaders, each written against the set's published layout.

Every loader returns plain ``Sample`` records (path, label, speaker/actor, optional paired media)
so that training code does not depend on a particular set.
"""
from .common import Sample, UnreadableImageError, read_face
from .folders import load_image_folders, load_audio_folders
from .emodb import load_emodb, parse_emodb_name
from .cremad import load_cremad, parse_cremad_name
from .semaine import load_semaine, SemaineSession
from .csv_manifest import load_csv_manifest

__all__ = ['Sample', 'UnreadableImageError', 'read_face', 'load_image_folders',
           'load_audio_folders', 'load_emodb', 'parse_emodb_name', 'load_cremad',
           'parse_cremad_name', 'load_semaine', 'SemaineSession', 'load_csv_manifest']

# The project's entry points. `make help` lists them.
.PHONY: help setup test demo bench firmware clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

setup:  ## install apt packages (as root), the venv and build the workspace (idempotent)
	bash scripts/setup.sh

test:  ## set up if needed, then run every test; ends with "N passed, N failed, N skipped"
	bash scripts/test.sh

demo:  ## set up if needed, then run the whole robot on a generated clip with a simulated Arduino (FACES=DIR SPEECH=DIR: a clip from those; PARAMS=YAML: node parameters)
	bash scripts/isolated.sh python -m emotion_bringup.demo$(if $(FACES), --faces '$(FACES)')$(if $(SPEECH), --speech '$(SPEECH)')$(if $(PARAMS), --params $(PARAMS))

bench:  ## run every benchmark and print one table
	bash scripts/isolated.sh python bench/run_all.py

firmware:  ## build the Arduino firmware (prints flash and RAM use)
	$(MAKE) -C firmware

clean:  ## remove build products (keeps the venv)
	rm -rf build install log

"""The local pipeline behind `make demo`: AWS emulators, runner, meter simulator, demo."""

"""Bundled example models (the `symmem zoo`): installed as the package data `symmem.data`."""

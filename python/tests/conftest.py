"""Shared fixtures: the `ldyn` binary the parity tests compare with (built by
`cargo test --release`, or named by $LDYN), and the CLI runner."""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ldyn():
    """The path of `ldyn`; a missing binary fails the tests, never skips them."""
    path = pathlib.Path(os.environ.get("LDYN", REPO / "target" / "release" / "ldyn"))
    assert path.is_file(), f"{path} is missing: build it with cargo build --release (./test does)"
    return str(path)


@pytest.fixture(scope="session")
def cli(ldyn):
    """Runs `ldyn ARGS` with stdout to DEVNULL (as a notebook's subprocess would) and
    returns the completed process (stderr captured)."""

    def call(*args, check=True):
        done = subprocess.run(
            [ldyn, *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return call

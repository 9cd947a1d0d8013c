"""`flinkmem serve` process set-up that needs no cluster."""

from __future__ import annotations

import gc

from flinkmem import serve


def test_startup_objects_are_frozen_out_of_collections() -> None:
    try:
        serve._freeze_startup_objects()
        # The modules imported so far (flinkmem, kopf, the kubernetes client) are all frozen.
        assert gc.get_freeze_count() > 20_000
    finally:
        gc.unfreeze()

"""What the app does once it has started and once it stops, beside serving."""

import gc

from fastapi.testclient import TestClient

from main import create_app


def test_start_up_objects_leave_the_collectors_generations_while_serving(settings):
    gc.unfreeze()  # another app of this process may have frozen its own
    app = create_app(settings)

    with TestClient(app) as client:
        frozen_while_serving = gc.get_freeze_count()
        assert client.get("/health").status_code == 200

    assert frozen_while_serving > 0
    assert gc.get_freeze_count() == 0

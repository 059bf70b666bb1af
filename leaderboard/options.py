"""What the `leaderboard` command accepts: its formats, sort keys and which papers' rows to show.
A module of its own, without pandas, because every `prunebench` command builds this parser."""

FORMATS = ("table", "markdown", "csv", "json", "html")  # views.RENDERERS draws each
# sort key -> (column, ascending): more compression and accuracy is better, fewer FLOPs, epochs and device-seconds.
SORT_KEYS = {
    "compression": ("compression_rate", False),
    "flops": ("flops", True),
    "top1": ("top1", False),
    "top5": ("top5", False),
    "epochs": ("epochs", True),
    "total_epochs": ("total_epochs", True),  # the shared dense stage counted (cost.with_costs)
    "device_seconds": ("device_seconds", True),  # devices x wall seconds (cost.devices)
    "speedup": ("speedup", False),  # within each device only (ranking.rank_by_speed)
}
REPORTED_MODES = ("matched", "all", "none")

"""Argus ingestor for QMT (迅投 MiniQMT) through xtquant.xtdata."""

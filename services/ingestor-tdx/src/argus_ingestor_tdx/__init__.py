"""Argus ingestor for TDX (通达信) market-data servers, through the pytdx client."""

"""Argus ingestor for Yahoo Finance, through yfinance."""

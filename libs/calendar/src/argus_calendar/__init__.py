"""Trading calendars for Argus: trading days, the phases of each day (call auctions, continuous
trading, the lunch break) and holidays for SSE/SZSE/BSE, HKEX and NYSE, from `exchange_calendars`.

    cal = Calendar.for_market("SH")
    cal.is_trading_day(date(2026, 10, 1))      # False: National Day
    cal.phase(datetime(2026, 11, 23, 9, 20, tzinfo=cal.tz))   # "auction"
"""

from .calendar import EXCHANGES, MARKETS, Calendar, UnknownMarket
from .days import ACTIVE, PHASES, Period, Phase, TradingDay

__all__ = ["ACTIVE", "EXCHANGES", "MARKETS", "PHASES", "Calendar", "Period", "Phase", "TradingDay", "UnknownMarket"]

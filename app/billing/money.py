"""Prices in minor units: reading what an admin types ("49", "49.00", "1,299.50") and writing amounts for
people ("€49.00", "¥4,900"). Stripe takes amounts in the currency's smallest unit; a few currencies have none
below the main one (Stripe's zero-decimal list), so "49.5" yen is refused instead of silently rounded."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from app.errors import InvalidInput

# The currencies a workspace can sell in: Stripe-supported ones people commonly price courses in.
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "INR",
              "BRL", "MXN", "SGD", "HKD", "ZAR", "KRW")
ZERO_DECIMAL = frozenset({"JPY", "KRW"})
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "CAD": "CA$", "AUD": "A$",
           "NZD": "NZ$", "BRL": "R$", "MXN": "MX$", "SGD": "S$", "HKD": "HK$"}
# Stripe's own ceiling for one Checkout payment is 99,999,999 minor units; its floor is about half a dollar.
MAX_MINOR = 99_999_999
MIN_MAJOR = {"JPY": 50, "KRW": 500}
MIN_MINOR_DEFAULT = 50


def digits(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def parse_currency(raw: str) -> str:
    code = raw.strip().upper()
    if code not in CURRENCIES:
        raise InvalidInput(f"Choose one of the listed currencies ({', '.join(CURRENCIES)}).")
    return code


def parse_price(raw: str, currency: str) -> int:
    """What an admin typed, in major units, as minor units; refuses what Stripe would refuse."""
    text = raw.strip().replace(",", "").replace(" ", "")
    for symbol in (*SYMBOLS.values(), currency):
        text = text.removeprefix(symbol)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput("Write the price as a number, like 49 or 49.00.") from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput("The price must be more than zero; a free course simply has no product.")
    places = digits(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        unit = "whole amounts" if places == 0 else f"at most {places} decimals"
        raise InvalidInput(f"{currency} prices take {unit}.")
    minor = int(minor)
    floor = MIN_MAJOR.get(currency, MIN_MINOR_DEFAULT)
    if minor < floor:
        raise InvalidInput(f"Stripe's smallest charge in {currency} is {format_amount(floor, currency)}.")
    if minor > MAX_MINOR:
        raise InvalidInput(f"Stripe's largest single payment in {currency} is {format_amount(MAX_MINOR, currency)}.")
    return minor


def major_text(amount_minor: int, currency: str) -> str:
    """The amount as an admin would type it back into the form: 4900 USD -> "49.00"."""
    places = digits(currency)
    return f"{Decimal(amount_minor).scaleb(-places):.{places}f}"


def format_amount(amount_minor: int, currency: str) -> str:
    places = digits(currency)
    number = f"{Decimal(amount_minor).scaleb(-places):,.{places}f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"

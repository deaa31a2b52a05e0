"""Column types as SDV 2.0's ``Metadata.detect_from_dataframes`` detects them (without importing SDV).

Used for the SDMetrics-comparable figures only (``quality.sdmetrics_score``, ``column_shapes``,
``column_pair_trends``), so that they match SDMetrics' QualityReport run under SDV's own detected metadata.
The rules follow ``sdv/metadata/_single_table.py`` (SDV 2.0.0):

- a name that contains a PII word (email, phone number, ...; whole tokens for ssn, state, province, city,
  vin) → that PII sdtype, which SDMetrics does not score; a name with the token ``id`` → id;
- bool → categorical; datetime64 → datetime;
- numbers: ``ordinal`` when there are more than 5 rows, every value is whole and there are at most
  min(round(rows / 10), 10) distinct values, else numerical;
- text: datetime when pandas guesses one datetime format for the first value and every value parses with
  it, else categorical;
- the first primary-key candidate (unique, no missing value, more than 5 rows; for numbers also whole and
  non-negative; an id-named column; text detected as categorical) becomes id.
"""

from __future__ import annotations

import re
import warnings

import pandas as pd
from pandas.core.tools.datetimes import _guess_datetime_format_for_array

_PII = {
    "phonenumber": "phone_number",
    "email": "email",
    "ssn": "ssn",
    "firstname": "first_name",
    "lastname": "last_name",
    "countrycode": "country_code",
    "administativeunit": "administrative_unit",
    "state": "administrative_unit",
    "province": "administrative_unit",
    "stateabbr": "state_abbr",
    "city": "city",
    "postalcode": "postcode",
    "zipcode": "postcode",
    "postcode": "postcode",
    "streetaddress": "street_address",
    "line1": "street_address",
    "secondaryaddress": "secondary_address",
    "line2": "secondary_address",
    "latitude": "latitude",
    "longitude": "longitude",
    "ipv4": "ipv4_address",
    "ipv4address": "ipv4_address",
    "ipv6": "ipv6_address",
    "ipv6address": "ipv6_address",
    "ipaddress": "ipv6_address",
    "macaddress": "mac_address",
    "useragent": "user_agent_string",
    "useragentstring": "user_agent_string",
    "iban": "iban",
    "swift": "swift11",
    "swift11": "swift11",
    "swift8": "swift8",
    "creditcardnumber": "credit_card_number",
    "vin": "vin",
    "licenseplate": "license_plate",
    "license": "license_plate",
}
# SDV matches these only as whole tokens of the name (they are substrings of ordinary words).
_TOKEN_ONLY = {"ssn", "administrative_unit", "city", "vin"}
_MIN_ROWS = 5


def _tokens(name: str) -> list[str]:
    tokens = name.replace(" ", "_").replace("-", "_").split("_")
    if len(tokens) == 1:
        tokens = []
        if name.upper() != name and name[1:].lower() != name[1:]:
            tokens = re.findall("[A-Z][^A-Z]*", name)
    return [token.lower() for token in (tokens or [name])]


def _name_sdtype(name: str) -> str | None:
    cleaned = re.sub(r"[^a-zA-Z0-9]", "", name.lower())
    for reference, sdtype in _PII.items():
        if sdtype not in _TOKEN_ONLY and reference in cleaned:
            return sdtype
    tokens = _tokens(name)
    for reference, sdtype in _PII.items():
        if sdtype in _TOKEN_ONLY and reference in tokens:
            return sdtype
    return "id" if "id" in tokens else None


def _number_sdtype(values: pd.Series) -> tuple[str, bool]:
    present = values.dropna()
    if len(values) <= _MIN_ROWS or present.empty:
        return "numerical", False
    whole = bool((present == present.round()).all())
    sdtype = "ordinal" if whole and present.nunique() <= min(round(len(values) / 10), 10) else "numerical"
    candidate = values.is_unique and not values.isna().any() and whole and bool((present >= 0).all())
    return sdtype, candidate


def _text_sdtype(values: pd.Series) -> tuple[str, bool]:
    sdtype = "categorical"
    sample = values.sample(10_000, random_state=0) if len(values) > 10_000 else values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        present = sample[~sample.isna()].astype(str).to_numpy()
        try:
            found = _guess_datetime_format_for_array(present)
            if found:
                pd.to_datetime(sample, format=found, errors="raise")
                sdtype = "datetime"
        except (ValueError, TypeError, OverflowError):
            pass
    candidate = (
        len(values) > _MIN_ROWS and sdtype == "categorical" and values.is_unique and not values.isna().any()
    )
    return sdtype, candidate


def detect_sdtypes(table: pd.DataFrame) -> dict[str, str]:
    """``{column name: sdtype}`` for every column of ``table``, as SDV 2.0 detects them."""
    detected: dict[str, str] = {}
    candidates: list[str] = []
    for name in table.columns:
        values = table[name]
        kind = values.dropna().infer_objects().dtype.kind
        sdtype = _name_sdtype(str(name))
        candidate = False
        if sdtype is None:
            if kind == "b":
                sdtype = "categorical"
            elif kind == "M":
                sdtype = "datetime"
            elif kind in "ifu":
                sdtype, candidate = _number_sdtype(values)
            else:
                sdtype, candidate = _text_sdtype(values)
        elif sdtype == "id":
            candidate = values.is_unique and not values.isna().any()
        if candidate:
            candidates.append(name)
        detected[name] = sdtype
    if candidates:
        detected[candidates[0]] = "id"
    return detected

"""Vocabularies taken once from Faker's en_US providers (names with their frequencies, streets, places).

Rows are drawn from these arrays with numpy, never one Faker call per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from faker import Faker
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.internet.en_US import Provider as InternetProvider
from faker.providers.person.en_US import Provider as PersonProvider

# States of the simulated network: the US Central time zone, so every local system shares America/Chicago.
NETWORK_STATES = ("IL", "WI", "MN", "IA", "MO", "NE")

# HHS Safe Harbor: three-digit ZIP areas with 20,000 people or fewer (2000 census). A few patients live there
# so that de-identification downstream has real cases to mask as "000".
RESTRICTED_ZIP3 = (
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884",
    "890", "893",
)  # fmt: skip

# Preferred language of patients, roughly following the ACS language-spoken-at-home shares.
LANGUAGES = (("English", 0.78), ("Spanish", 0.13), ("Chinese", 0.012), ("Vietnamese", 0.008),
             ("Arabic", 0.008), ("Tagalog", 0.007), ("Korean", 0.005), ("Russian", 0.005),
             ("Polish", 0.005), ("Hmong", 0.004), ("Somali", 0.004), ("German", 0.012))  # fmt: skip


@dataclass(frozen=True)
class WeightedWords:
    """Words with normalised sampling probabilities."""

    words: np.ndarray
    p: np.ndarray

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` words."""
        return self.words[rng.choice(self.words.size, size=size, p=self.p)]


def _weighted(mapping: dict[str, float]) -> WeightedWords:
    weights = np.fromiter(mapping.values(), dtype=np.float64)
    return WeightedWords(np.array(list(mapping.keys()), dtype=object), weights / weights.sum())


@cache
def first_names(sex: str) -> WeightedWords:
    """First names by sex ("F" or "M") with their US frequencies."""
    names = PersonProvider.first_names_female if sex == "F" else PersonProvider.first_names_male
    return _weighted(dict(names))


@cache
def last_names() -> WeightedWords:
    """Last names with their US frequencies."""
    return _weighted(dict(PersonProvider.last_names))


@cache
def street_words() -> tuple[np.ndarray, np.ndarray]:
    """Street name stems (last names, as US streets often are) and street suffixes."""
    stems = np.array(list(PersonProvider.last_names.keys())[:400], dtype=object)
    return stems, np.array(AddressProvider.street_suffixes, dtype=object)


@cache
def email_domains() -> np.ndarray:
    """Free e-mail domains."""
    return np.array(InternetProvider.free_email_domains, dtype=object)


@cache
def state_zip_ranges() -> dict[str, tuple[int, int]]:
    """Five-digit ZIP range per state."""
    return dict(AddressProvider.states_postcode)


def city_names(seed: int, count: int) -> list[str]:
    """``count`` distinct city names from a seeded Faker (a handful of calls, not one per row)."""
    faker = Faker("en_US")
    faker.seed_instance(seed)
    names: list[str] = []
    while len(names) < count:
        name = faker.city()
        if name not in names:
            names.append(name)
    return names

"""What a sentence claims: numbers in digits and words with what they count, colours and materials with
the thing they describe, years and dates (the ground floor the fact table and the checker share)."""

import pytest

from scifi_llm.claims import claims_in, parse_number, role_head


@pytest.mark.parametrize(
    ("written", "value"),
    [("61,000", 61000), ("1.55", 1.55), ("a hundred and eight", 108), ("ninety-six", 96),
     ("nine thousand two hundred", 9200), ("two point two million", 2_200_000), ("eleven", 11)],
)  # fmt: skip
def test_numbers_in_digits_and_words(written, value):
    assert parse_number(written) == pytest.approx(value)


def _claims(sentence: str) -> set[tuple]:
    return {(c.kind, c.key, c.value) for c in claims_in(sentence)}


def test_a_quantity_is_keyed_by_what_it_counts_in_one_unit():
    assert _claims("about 61,000 people living in caverns") == {("quantity", "people", 61000)}
    assert _claims("Ninety thousand people lived under the ice") == {("quantity", "people", 90000)}
    assert _claims("a shaft 4 km deep and 300 m wide") == {
        ("quantity", "m deep", 4000),
        ("quantity", "m wide", 300),
    }
    assert _claims("six kilometres deep") == {("quantity", "m deep", 6000)}
    (height,) = claims_in("She stood barely one metre forty")
    assert (height.key, round(height.value, 2), height.approximate) == ("m", 1.4, True)
    assert _claims("a wall of 37 brass plaques") == {
        ("quantity", "plaque", 37),
        ("look", "plaque", ("brass",)),
    }
    assert _claims("**Population:** 41,000") == {("quantity", "people", 41000)}
    assert _claims("**Length:** 4.1 kilometres") == {("quantity", "m long", 4100)}


def test_when_is_not_how_much():
    assert _claims("Two days later the clinic was locked.") == set()
    assert _claims("She always said she would, one day.") == set()


def test_a_look_names_its_thing():
    assert _claims("Behind a green door") == {("look", "door", ("green",))}
    assert _claims("a cane of polished Calla basalt") == {("look", "cane", ("basalt",))}
    assert _claims("Hair went white in his twenties") == {("look", "hair", ("white",))}
    assert ("look", "greatcoat", ("blue", "navy")) in _claims("Navy-blue Concord greatcoat, always buttoned")
    assert ("look", "ring", ("copper",)) in _claims("A ring of copper wire on her left thumb.")
    assert ("look", "oilskin", ("bottle", "green")) in _claims("the collar of her bottle-green oilskin")


def test_years_dates_and_a_calendar_of_its_own():
    dates = {
        c.date for c in claims_in("The Quiet came on the nineteenth of August 2389.") if c.kind == "year"
    }
    assert dates == {(2389, 8, 19)}
    assert {c.date for c in claims_in("2399, 11 April: Decompression") if c.kind == "year"} == {(2399, 4, 11)}
    assert {c.value for c in claims_in("**Born:** 572 AR, Ashfall yards") if c.kind == "year"} == {572}
    assert {c.value for c in claims_in("She has been First Listener since 609") if c.kind == "year"} == {609}
    assert not [c for c in claims_in("one of 120 crew") if c.kind == "year"]
    assert not [c for c in claims_in("Docking fees are 1200 marks") if c.kind == "year"]


def test_roles_read_as_their_head_word():
    assert [role_head(word) for word in ("Lt.", "pilot-in-training", "Commander", "friend")] == [
        "lieutenant", "pilot", "commander", ""]  # fmt: skip

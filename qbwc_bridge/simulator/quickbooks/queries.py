"""Filters, MaxReturned and iterators: how every list and transaction query selects."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime

from lxml import etree

from qbwc_bridge.simulator.quickbooks.books import Books, _Iterator
from qbwc_bridge.simulator.quickbooks.elements import (
    _NOT_IN_LIST,
    _Answer,
    _child,
    _children,
    _parse_date,
    _parse_datetime,
    _Status,
    _text,
    _to_cp1252,
)

_NO_MATCH = "A query request did not find a matching object in QuickBooks"


class Queries(Books):
    """The query machinery the list and transaction families share."""

    def _run_query(
        self,
        request: etree._Element,
        matching: Callable[[], list[str]],
        render: Callable[[str], etree._Element | None],
    ) -> _Answer:
        """Filters, MaxReturned and iterators, shared by every list and transaction query."""
        iterator = request.get("iterator")
        max_returned = _max_returned(request)
        if iterator == "Continue":
            return self._continue_iterator(request, render)
        keys = matching()
        if iterator == "Start":
            page_size = max_returned if max_returned is not None else len(keys)
            iterator_id = "{" + str(uuid.uuid4()) + "}"
            page, rest = keys[:page_size], keys[page_size:]
            if rest:
                self._iterators[iterator_id] = _Iterator(request.tag, rest, 0, self._clock())
            rets = _render_all(page, render)
            return _answer_for(rets, (len(rest), iterator_id))
        limited = keys if max_returned is None else keys[:max_returned]
        return _answer_for(_render_all(limited, render), None)

    def _continue_iterator(
        self, request: etree._Element, render: Callable[[str], etree._Element | None]
    ) -> _Answer:
        iterator_id = request.get("iteratorID", "")
        state = self._iterators.get(iterator_id)
        now = self._clock()
        if (
            state is None
            or state.request_tag != request.tag
            or now - state.last_used > self._iterator_ttl
        ):
            self._iterators.pop(iterator_id, None)
            raise _Status(3391, "Error", f'The iteratorID "{iterator_id}" is not valid.')
        page_size = _max_returned(request) or len(state.keys)
        page = state.keys[state.position : state.position + page_size]
        state.position += len(page)
        state.last_used = now
        remaining = len(state.keys) - state.position
        if remaining == 0:
            del self._iterators[iterator_id]
        return _answer_for(_render_all(page, render), (remaining, iterator_id))

    def _common_txn_filter(
        self, request: etree._Element
    ) -> Callable[[str, str | None, date, datetime], bool]:
        now = self._clock()
        modified = _child(request, "ModifiedDateRangeFilter")
        from_modified = to_modified = None
        if modified is not None:
            if (text := _text(modified, "FromModifiedDate")) is not None:
                from_modified = _parse_datetime(text, now, end_of_day=False)
            if (text := _text(modified, "ToModifiedDate")) is not None:
                to_modified = _parse_datetime(text, now, end_of_day=True)
        txn_dates = _child(request, "TxnDateRangeFilter")
        from_date = to_date = None
        if txn_dates is not None:
            if (text := _text(txn_dates, "FromTxnDate")) is not None:
                from_date = _parse_date(text)
            if (text := _text(txn_dates, "ToTxnDate")) is not None:
                to_date = _parse_date(text)
        entities = self._entity_names(_child(request, "EntityFilter"))
        ref_filter = _child(request, "RefNumberFilter")
        ref_range = _child(request, "RefNumberRangeFilter")

        def keep(customer: str, ref: str | None, txn_date: date, time_modified: datetime) -> bool:
            checks = (
                from_modified is None or time_modified >= from_modified,
                to_modified is None or time_modified <= to_modified,
                from_date is None or txn_date >= from_date,
                to_date is None or txn_date <= to_date,
                entities is None or _in_entities(customer, entities),
                ref_filter is None
                or _matches_criterion(
                    ref or "",
                    _text(ref_filter, "MatchCriterion") or "Contains",
                    _text(ref_filter, "RefNumber") or "",
                ),
                ref_range is None or _in_range(ref or "", ref_range, "RefNumber"),
            )
            return all(checks)

        return keep

    def _entity_names(self, entity_filter: etree._Element | None) -> list[tuple[str, bool]] | None:
        """(lower-case FullName, with children) pairs of an EntityFilter, or None without one."""
        if entity_filter is None:
            return None
        names: list[tuple[str, bool]] = []
        for child in _children(entity_filter):
            text = _to_cp1252((child.text or "").strip())
            with_children = child.tag.endswith("WithChildren")
            if child.tag.startswith("ListID"):
                key = self._customer_ids.get(text)
                if key is not None:
                    names.append((key, with_children))
            else:
                names.append((text.lower(), with_children))
        return names


def _matches_criterion(value: str, criterion: str, wanted: str) -> bool:
    value, wanted = value.lower(), wanted.lower()
    if criterion == "StartsWith":
        return value.startswith(wanted)
    if criterion == "EndsWith":
        return value.endswith(wanted)
    return wanted in value


def _max_returned(request: etree._Element) -> int | None:
    text = _text(request, "MaxReturned")
    if text is None:
        return None
    try:
        return max(int(text), 0)
    except ValueError as exc:
        raise _Status(
            3000, "Error", f'The given value "{text}" in "MaxReturned" is invalid.'
        ) from exc


def _render_all(
    keys: Iterable[str], render: Callable[[str], etree._Element | None]
) -> list[etree._Element]:
    return [ret for key in keys if (ret := render(key)) is not None]


def _answer_for(rets: list[etree._Element], iterator: tuple[int, str] | None) -> _Answer:
    if rets:
        return _Answer(rets, iterator=iterator)
    return _Answer([], 1, "Info", _NO_MATCH, iterator)


def _by_txn_ids(
    txn_ids: list[str], known: set[str], render: Callable[[str], etree._Element | None]
) -> _Answer:
    missing = next((txn_id for txn_id in txn_ids if txn_id not in known), None)
    if missing is not None:
        raise _Status(
            3120,
            "Error",
            f'Object "{missing}" specified in the request cannot be found.' + _NOT_IN_LIST,
        )
    return _Answer(_render_all(txn_ids, render))


def _in_entities(customer: str, entities: list[tuple[str, bool]]) -> bool:
    key = customer.lower()
    return any(
        key == name or (with_children and key.startswith(name + ":"))
        for name, with_children in entities
    )


def _in_range(value: str, range_filter: etree._Element, field: str) -> bool:
    low = _text(range_filter, f"From{field}")
    high = _text(range_filter, f"To{field}")
    folded = value.lower()
    return (low is None or folded >= low.lower()) and (high is None or folded <= high.lower())


def _list_filters(request: etree._Element, now: datetime) -> Callable[[str, bool, datetime], bool]:
    """ActiveStatus, modified dates, NameFilter and NameRangeFilter of a list query."""
    active = _text(request, "ActiveStatus") or "ActiveOnly"
    from_text, to_text = _text(request, "FromModifiedDate"), _text(request, "ToModifiedDate")
    from_modified = _parse_datetime(from_text, now, end_of_day=False) if from_text else None
    to_modified = _parse_datetime(to_text, now, end_of_day=True) if to_text else None
    name_filter = _child(request, "NameFilter")
    name_range = _child(request, "NameRangeFilter")

    def keep(full_name: str, is_active: bool, time_modified: datetime) -> bool:
        checks = (
            active == "All" or (active == "ActiveOnly") == is_active,
            from_modified is None or time_modified >= from_modified,
            to_modified is None or time_modified <= to_modified,
            name_filter is None
            or _matches_criterion(
                full_name,
                _text(name_filter, "MatchCriterion") or "Contains",
                _text(name_filter, "Name") or "",
            ),
            name_range is None or _in_range(full_name, name_range, "Name"),
        )
        return all(checks)

    return keep

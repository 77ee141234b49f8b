"""Client message schemas: each room kind declares its message types, and every client message
is validated against them, by the gateway and again by the room (DESIGN §2, §6).

A kind declares ``Room.messages``, type name -> ``msgspec.Struct`` subclass::

    class MoveTo(msgspec.Struct):
        x: Annotated[float, msgspec.Meta(ge=-1000.0, le=1000.0)]
        y: Annotated[float, msgspec.Meta(ge=-1000.0, le=1000.0)]

    class ShipRoom(Room):
        messages = {"move_to": MoveTo}

``parse_client_message(data, schemas)`` decodes one client envelope and validates it; its
errors are the protocol's codes (docs/protocol.md §4) (``parse_client_message(data, schemas,
kind_fast_decoders(room_cls))``: the same result and errors, most messages decoded straight
into their Struct):

- ``ERR_UNKNOWN_TYPE`` (2): a type the kind did not declare (and not one of the protocol's
  own ``join``, ``ping``, ``resync``);
- ``ERR_INVALID_FIELD`` (3): a required field is missing, or a value has the wrong type
  (msgspec's strict rules: a bool is not an int nor a float, a float is not an int, an int is
  a valid float, nil is only valid where the field allows None);
- ``ERR_OUT_OF_RANGE`` (4): a value outside a constraint the field declares with
  ``msgspec.Meta`` (``ge``/``gt``/``le``/``lt``, ``multiple_of``, ``min_length``/``max_length``,
  ``pattern``). NaN is outside every float range, infinities outside a bounded one.

Unknown payload keys are ignored (whatever the Struct's ``forbid_unknown_fields``). When
several fields are invalid, the first in the Struct's declaration order decides the code and
the message (not the order of the keys in the payload). A Struct's ``__post_init__`` raising
``ValueError`` or ``TypeError`` is ``ERR_INVALID_FIELD``.
"""

from __future__ import annotations

import copyreg
import re
import weakref
from typing import Any, Mapping

import msgspec
import msgspec.inspect

from .protocol import (ERR_INVALID_FIELD, ERR_OUT_OF_RANGE, ERR_UNKNOWN_TYPE, JOIN, MAX_MESSAGE_BYTES, MAX_SEQ,
                       PING, PROTOCOL_TYPES, RESYNC, ClientMessage, ProtocolError, Resync, decode, join_payload)

__all__ = ["kind_decoders", "kind_fast_decoders", "kind_schemas", "check_messages", "decode_payload",
           "parse_client_message", "validate_payload", "RAW_ENVELOPE"]

_CONSTRAINT = re.compile(r"Expected `[^`]*` (?:>|<|of length|matching regex|that's a multiple|that is a multiple)")
"""msgspec's wording of a failed ``msgspec.Meta`` constraint (as opposed to a wrong type)."""
_NO_FIELD = object()
_schemas: "weakref.WeakKeyDictionary[type, dict[str, type]]" = weakref.WeakKeyDictionary()
_decoders: "weakref.WeakKeyDictionary[type, dict[str, msgspec.msgpack.Decoder]]" = weakref.WeakKeyDictionary()


def check_messages(messages: Mapping[str, Any], owner: str = "messages") -> dict[str, type]:
    """``messages`` as a dict after checking it: type names are non-empty str other than the
    protocol's own (``join``, ``ping``, ``resync``), values ``msgspec.Struct`` subclasses.
    Raises ``TypeError`` otherwise (``owner`` names the culprit in the message)."""
    if not isinstance(messages, Mapping):
        raise TypeError(f"{owner} must be a dict of type name -> msgspec.Struct subclass")
    for name, schema in messages.items():
        if not isinstance(name, str) or not name or name in PROTOCOL_TYPES:
            raise TypeError(f"{owner}: {name!r} is not a message type name (non-empty, not one of {PROTOCOL_TYPES})")
        if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
            raise TypeError(f"{owner}[{name!r}] must be a msgspec.Struct subclass, not {schema!r}")
    return dict(messages)


def kind_schemas(room_cls: type) -> dict[str, type]:
    """The message types a room of class ``room_cls`` receives in ``on_message``: its
    ``messages`` plus ``resync`` (payload ``Resync``). Cached per class. Raises ``TypeError``
    for an invalid ``messages`` (``check_messages``)."""
    schemas = _schemas.get(room_cls)
    if schemas is None:
        declared = check_messages(getattr(room_cls, "messages", {}), f"{room_cls.__qualname__}.messages")
        for name, schema in declared.items():
            recipe = schema.__dict__.get(_RECIPE)
            if recipe is not None and recipe[0] and not schema.__struct_fields__:
                declared[name] = _rebuild(schema, *recipe)
        schemas = _schemas[room_cls] = {RESYNC: Resync, **declared}
    return schemas


def kind_decoders(room_cls: type) -> dict[str, msgspec.msgpack.Decoder]:
    """A msgpack decoder per message type of ``kind_schemas(room_cls)`` (type name ->
    ``msgspec.msgpack.Decoder(schema)``), for ``decode_payload``. Cached per class."""
    decoders = _decoders.get(room_cls)
    if decoders is None:
        decoders = _decoders[room_cls] = {name: msgspec.msgpack.Decoder(schema)
                                          for name, schema in kind_schemas(room_cls).items()}
    return decoders


_fast: "weakref.WeakKeyDictionary[type, dict]" = weakref.WeakKeyDictionary()


def kind_fast_decoders(room_cls: type) -> dict[str, tuple[msgspec.msgpack.Decoder, int]]:
    """For ``parse_client_message``'s fast path: type name -> ``(decoder, limit)`` for each
    declared message type (``kind_decoders``) but ``join`` and ``ping`` whose Struct has at
    most 15 fields, all required (no default: a map that decodes with no more keys than that
    has no unknown key), each a scalar (bool, int, float, str, None, a literal or a union of
    them: no container the shape limits apply to, no extension type only the typed decoder
    reads); ``limit`` is the largest first byte of a payload it takes: a msgpack fixmap of at
    most the Struct's field count (``0x80 + fields``). Cached per class."""
    fast = _fast.get(room_cls)
    if fast is None:
        fast = _fast[room_cls] = {}
        for name, decoder in kind_decoders(room_cls).items():
            fields = msgspec.inspect.type_info(decoder.type).fields
            if name not in (JOIN, PING) and len(fields) <= 15 and all(f.required and _scalar(f.type) for f in fields):
                fast[name] = (decoder, 0x80 + len(fields))
    return fast


_SCALARS = (msgspec.inspect.BoolType, msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.StrType,
            msgspec.inspect.NoneType, msgspec.inspect.LiteralType)


def _scalar(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.UnionType):
        return all(_scalar(t) for t in info.types)
    return isinstance(info, _SCALARS)


RAW_ENVELOPE = msgspec.msgpack.Decoder(tuple[str, int, msgspec.Raw])
"""A client envelope ``[str, int, any]`` with its payload left as msgpack bytes (``decode(data)``
gives ``(type, seq, msgspec.Raw)``): the first step of ``parse_client_message``'s fast path, and of
the gateway's compiled one (``starhold.kernels.wsinput.InputGate``)."""


_RECIPE = "__starhold_struct_recipe__"
_CONFIG = ("frozen", "array_like", "forbid_unknown_fields", "omit_defaults", "tag", "tag_field")


def make_portable(room_cls: type) -> None:
    """Let the message Structs of ``room_cls`` travel to another process by value (a room
    class defined in a test module, sent to Ray actors by cloudpickle): cloudpickle rebuilds
    a class from its ``__dict__``, where msgspec keeps neither fields, defaults nor config, so
    this stores them there as a plain recipe, from which ``kind_schemas`` rebuilds an
    equivalent Struct (same name, fields, defaults, renames, constraints and config; another
    class object) on the other side. Raises ``TypeError`` as ``check_messages``."""
    for schema in check_messages(getattr(room_cls, "messages", {}), f"{room_cls.__qualname__}.messages").values():
        if _RECIPE not in schema.__dict__:
            fields = [(f.name, f.type, f.default, f.default_factory, f.encode_name)
                      for f in msgspec.structs.fields(schema)]
            config = schema.__struct_config__
            setattr(schema, _RECIPE, (fields, {k: getattr(config, k) for k in _CONFIG}))


def _rebuild(schema: type, fields: list, config: dict) -> type:
    if config.get("tag") is None:
        config = {k: v for k, v in config.items() if k not in ("tag", "tag_field")}
    return msgspec.defstruct(schema.__name__, [
        (name, type_, msgspec.field(default=default, default_factory=factory, name=encode_name))
        for name, type_, default, factory, encode_name in fields], module=schema.__module__, **config)


def parse_client_message(data: bytes, schemas: Mapping[str, type],
                         fast: Mapping[str, tuple[msgspec.msgpack.Decoder, int]] | None = None) -> ClientMessage:
    """Decode and validate one client envelope against ``schemas`` (``kind_schemas``).

    Returns a ``ClientMessage``: for ``join`` its payload is the validated dict
    (``protocol.join_payload``), for ``ping`` an empty dict, for every other type the
    declared Struct. Raises ``ProtocolError`` with ``ERR_MALFORMED`` (``protocol.decode``),
    ``ERR_UNKNOWN_TYPE``, ``ERR_INVALID_FIELD`` or ``ERR_OUT_OF_RANGE`` (see the module
    docstring), carrying the message's ``seq`` when it could be read.

    ``fast`` (``kind_fast_decoders`` of the same kind): a message of one of its types, ``seq``
    in range, whose payload is a map of no more keys than the Struct has (required) fields, so
    no unknown key and nothing the shape limits could refuse, is decoded straight from its
    bytes into the Struct (a ``move_to`` ~0.57 µs against ~0.88 µs here,
    ``benchmarks/client_messages.py``); any other message, and any that this decoding refuses,
    takes the plain path (``protocol.decode``, then the Struct), which decides. The result and
    the errors are the same either way."""
    if fast is not None and type(data) is bytes and len(data) <= MAX_MESSAGE_BYTES:
        try:
            type_, seq, raw = RAW_ENVELOPE.decode(data)
            entry = fast.get(type_)
            # (the payload is the envelope's last bytes: its first byte is the map's header)
            if entry is not None and 0 <= seq <= MAX_SEQ and 0x80 <= data[len(data) - len(raw)] <= entry[1]:
                return ClientMessage(type_, seq, entry[0].decode(raw))
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
    type_, seq, payload = decode(data)
    if type_ == JOIN:
        return ClientMessage(type_, seq, join_payload(payload, seq))
    if type_ == PING:
        return ClientMessage(type_, seq, {})
    return ClientMessage(type_, seq, validate_payload(schemas, type_, seq, payload))


def validate_payload(schemas: Mapping[str, type], type_: str, seq: int, payload: Any) -> msgspec.Struct:
    """``payload`` (a decoded map) as an instance of ``schemas[type_]``. Raises
    ``ProtocolError`` (``ERR_UNKNOWN_TYPE``, ``ERR_INVALID_FIELD``, ``ERR_OUT_OF_RANGE``; see
    the module docstring) with ``seq``."""
    schema = schemas.get(type_)
    if schema is None:
        raise ProtocolError(ERR_UNKNOWN_TYPE, f"unknown message type {type_[:32]!r}", seq)
    try:
        return msgspec.convert(payload, schema)
    except msgspec.ValidationError:
        # Rare: find the first invalid field in declaration order (msgspec reports the first in
        # the payload's key order), or succeed when only what is ignored was wrong (a key that
        # is not a string, an unknown key the Struct forbids).
        return _field_by_field(schema, type_, seq, payload)


def decode_payload(schemas: Mapping[str, type], decoders: Mapping[str, msgspec.msgpack.Decoder], type_: str,
                   seq: int, raw: Any) -> msgspec.Struct:
    """``validate_payload`` of a payload still in its msgpack bytes (``raw``: ``msgspec.Raw``
    or bytes, as a data channel's batch carries it; ``decoders``: ``kind_decoders``): the
    Struct decoded straight from the bytes by the type's decoder. When that fails, the bytes
    are decoded to plain values and ``validate_payload`` decides, so the result and the
    ``ProtocolError`` (code, text, ``seq``) are those of ``validate_payload`` on the decoded
    map. Raises ``ProtocolError`` as ``validate_payload``, and ``msgspec.DecodeError`` when
    ``raw`` is not one msgpack object."""
    decoder = decoders.get(type_)
    if decoder is not None:
        try:
            return decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # the precise error (or a map only validate_payload accepts): the slow path
    return validate_payload(schemas, type_, seq, msgspec.msgpack.decode(raw))


_fields: "weakref.WeakKeyDictionary[type, tuple]" = weakref.WeakKeyDictionary()


def _struct_fields(schema: type) -> tuple:
    """``msgspec.structs.fields(schema)``, cached per Struct: msgspec evaluates the class's
    annotations on every call (tens of microseconds), and this runs for every invalid message."""
    fields = _fields.get(schema)
    if fields is None:
        fields = _fields[schema] = msgspec.structs.fields(schema)
    return fields


def _field_by_field(schema: type, type_: str, seq: int, payload: Any) -> msgspec.Struct:
    if not isinstance(payload, Mapping):
        raise ProtocolError(ERR_INVALID_FIELD, f"{type_} payload must be a map", seq)
    values = {}
    for field in _struct_fields(schema):
        value = payload.get(field.encode_name, _NO_FIELD)
        if value is _NO_FIELD:
            if field.required:
                raise ProtocolError(ERR_INVALID_FIELD, f"missing field {field.encode_name!r}", seq)
            continue
        try:
            values[field.name] = msgspec.convert(value, field.type)
        except msgspec.ValidationError as exc:
            text, _, where = str(exc).partition(" - at `$")
            location = field.encode_name + where.rstrip("`")
            code = ERR_OUT_OF_RANGE if _CONSTRAINT.match(text) else ERR_INVALID_FIELD
            raise ProtocolError(code, f"field {location!r}: {text[:1].lower()}{text[1:]}", seq) from None
    try:
        return schema(**values)
    except (ValueError, TypeError) as exc:  # __post_init__
        raise ProtocolError(ERR_INVALID_FIELD, f"invalid {type_}: {exc}", seq) from None


def _rebuild_meta(constraints: dict) -> msgspec.Meta:
    return msgspec.Meta(**constraints)


def _reduce_meta(meta: msgspec.Meta):
    """``msgspec.Meta`` does not pickle; a room class defined in a test module travels to Ray
    actors by value (cloudpickle), its messages' ``Annotated`` constraints with it."""
    names = ("gt", "ge", "lt", "le", "multiple_of", "pattern", "min_length", "max_length", "tz", "title",
             "description", "examples", "extra_json_schema", "extra")
    return _rebuild_meta, ({n: getattr(meta, n) for n in names if getattr(meta, n, None) is not None},)


copyreg.pickle(msgspec.Meta, _reduce_meta)

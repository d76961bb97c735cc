"""Validation of extraction replies and the wording of the pipeline's prompts."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from perception_verl.annotate.extract import ExtractionError, parse_fact_list
from perception_verl.annotate.prompts import (
    build_extract_messages,
    build_reask_messages,
    build_solve_messages,
    image_data_url,
    question_text,
)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_plain_array_is_stripped_whitespace_normalised_and_deduplicated():
    reply = '["  JKLM is a parallelogram ", "JK = 3f - 6", "", "jklm is  a parallelogram", "JK = 3f - 6"]'
    assert parse_fact_list(reply) == ["JKLM is a parallelogram", "JK = 3f - 6"]


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n["AB = 6", "angle B is 90 degrees"]\n```',
        'Here are the facts:\n["AB = 6", "angle B is 90 degrees"]\nHope this helps.',
        '{"facts": ["AB = 6", "angle B is 90 degrees"]}',
        '```\n{"facts": ["AB = 6", "angle B is 90 degrees"]}\n```',
    ],
)
def test_fenced_embedded_and_object_forms_are_accepted(reply):
    assert parse_fact_list(reply) == ["AB = 6", "angle B is 90 degrees"]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "empty"),
        ("The figure shows a triangle.", "not valid JSON"),
        ('"AB = 6"', "got a JSON str"),
        ('{"answer": "3"}', 'no "facts" array'),
        ('["AB = 6", 7]', "item 1 is a JSON int"),
        ('["", "   "]', "no non-empty facts"),
        ("[]", "no non-empty facts"),
        ('["<info1>AB = 6</info1>"]', "<info> tag"),
    ],
)
def test_unusable_replies_raise_with_a_reason(reply, message):
    with pytest.raises(ExtractionError, match=message):
        parse_fact_list(reply)


def test_limits_on_count_and_length():
    with pytest.raises(ExtractionError, match="3 facts, more than the limit of 2"):
        parse_fact_list('["a", "b", "c"]', max_facts=2)
    with pytest.raises(ExtractionError, match="fact 0 is 11 characters long"):
        parse_fact_list('["abcdefghijk"]', max_chars=10)


def test_solve_message_carries_images_as_data_urls_then_the_instruction():
    png = _png()
    messages = build_solve_messages("<image>Find x. AB = 6.", [png, png])
    assert [m["role"] for m in messages] == ["user"]
    parts = messages[0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png
    text = parts[2]["text"]
    assert text.startswith("Find x. AB = 6.")
    assert "<image>" not in text
    for marker in ("<think>", "<answer>", "\\boxed{}"):
        assert marker in text


def test_image_data_url_detects_jpeg_and_rejects_unknown_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    assert image_data_url(buffer.getvalue()).startswith("data:image/jpeg;base64,")
    with pytest.raises(ValueError, match="unrecognised image encoding"):
        image_data_url(b"not an image")


def test_extract_and_reask_messages():
    messages = build_extract_messages("<image>Find x.", "<think>AB = 6</think>", max_facts=5)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "never more than 5" in messages[0]["content"]
    assert "JSON array" in messages[0]["content"]
    assert messages[1]["content"] == "Question:\nFind x.\n\nSolution:\n<think>AB = 6</think>"
    object_messages = build_extract_messages("Find x.", "s", max_facts=5, json_object=True)
    assert '"facts"' in object_messages[0]["content"]
    again = build_reask_messages(messages, "oops", "the reply is not valid JSON")
    assert again[:2] == messages
    assert again[2] == {"role": "assistant", "content": "oops"}
    assert again[3]["role"] == "user"
    assert "the reply is not valid JSON" in again[3]["content"]
    assert question_text("<image>\nA <image> B") == "A B"

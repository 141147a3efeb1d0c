from pathlib import Path

import pytest

from schemas.envelope import EnvelopeError, inspect_page

LOCAL_SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(name: str) -> bytes:
    return (LOCAL_SAMPLES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "items", "total", "is_xml"),
    [
        ("kra_api214_response.json", 10, 11, False),
        ("kra_api214_response.xml", 10, 4040, True),
        ("kra_api12_response.json", 1, 1, False),
        ("kra_api8_2_response.json", 1, 1, False),
    ],
)
def test_real_samples(name, items, total, is_xml):
    info = inspect_page(sample(name))
    assert (info.code, info.item_count, info.total_count, info.is_xml) == ("00", items, total, is_xml)


def test_gateway_error_xml_and_json():
    xml = (
        b"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>"
        b"SERVICE_KEY_IS_NOT_REGISTERED_ERROR</returnAuthMsg><returnReasonCode>30</returnReasonCode>"
        b"</cmmMsgHeader></OpenAPI_ServiceResponse>"
    )
    assert inspect_page(xml).code == "30"
    js = b'{"OpenAPI_ServiceResponse":{"cmmMsgHeader":{"errMsg":"x","returnAuthMsg":"y","returnReasonCode":"22"}}}'
    assert inspect_page(js).code == "22"


def test_empty_items_shapes_and_string_counters():
    for items in (b'""', b"null", b'{"item": ""}', b'{"item": []}'):
        body = (
            b'{"response":{"header":{"resultCode":"00","resultMsg":"OK"},"body":{"items":'
            + items
            + b',"numOfRows":"10","pageNo":"1","totalCount":"0"}}}'
        )
        info = inspect_page(body)
        assert (info.item_count, info.total_count, info.num_rows) == (0, 0, 10)
    no_body = b'{"response":{"header":{"resultCode":"99","resultMsg":"ERROR"}}}'
    assert inspect_page(no_body).code == "99"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b'{"response": {"header": ]] not json',
        b'{"response":{"header":{"resultCode":"00"',
        b"[1,2]",
        b"<html><body>502 Bad Gateway</body></html>",
        b"<response><header><resultCode>00",
        b"\x00\xff\xfe",
        b'{"response":{"header":{"resultCode":"00"},"body":{"items":{"item":5}}}}',
        b'{"response":{"header":{"resultCode":"00"},"body":{"totalCount":"many"}}}',
    ],
)
def test_malformed_bodies_raise(body):
    with pytest.raises(EnvelopeError):
        inspect_page(body)

"""llama.cpp's `response_fields`, as llama-server's json_get_nested_values answers them."""

from cerebrum.llamacpp import select_fields

BODY = {"content": "x", "stop": True, "timings": {"prompt_n": 3, "predicted_ms": 1.5},
        "generation_settings": {"n_ctx": 2048}}


def test_paths_come_back_flat_under_their_own_names():
    got = select_fields(BODY, ("content", "timings/prompt_n", "generation_settings/n_ctx"))
    assert got == {"content": "x", "timings/prompt_n": 3, "generation_settings/n_ctx": 2048}


def test_a_missing_path_is_left_out():
    assert select_fields(BODY, ("", "timings/nope", "content/deeper", "nope")) == {}
    assert select_fields(BODY, ("timings",)) == {"timings": BODY["timings"]}

"""Variables fill step parameters at any depth; secret values never reach a log in any written form."""

import pytest

from deployments.variables import MASK, UnknownVariablesError, mask, substitute


def test_variables_are_substituted_in_strings_at_any_depth():
    # given parameters naming variables in nested strings, and non-string values
    parameters = {
        "url": "https://#{Host}/deploy?v=#{Version}",
        "headers": {"Authorization": "Bearer #{Token}"},
        "steps": ["#{Version}", 3, None],
        "timeout": 10,
    }

    # when they are substituted
    result = substitute(parameters, {"Host": "ci.example.com", "Version": "1.2.3", "Token": "s3cret"})

    # then every reference is replaced and everything else kept
    assert result == {
        "url": "https://ci.example.com/deploy?v=1.2.3",
        "headers": {"Authorization": "Bearer s3cret"},
        "steps": ["1.2.3", 3, None],
        "timeout": 10,
    }
    assert parameters["url"] == "https://#{Host}/deploy?v=#{Version}", "the input is left unchanged"


def test_every_unknown_variable_is_reported_at_once():
    # given parameters naming two undefined variables
    # when they are substituted, then both are named
    with pytest.raises(UnknownVariablesError) as raised:
        substitute({"a": "#{Missing.One}", "b": ["#{Known} #{Missing.Two}"]}, {"Known": "x"})
    assert raised.value.names == ["Missing.One", "Missing.Two"]


def test_escaped_references_stay_literal_and_values_are_not_substituted_again():
    # given an escaped reference, and a value that itself looks like a reference
    # when substituted, then the escape yields the literal and the value is inserted as is
    result = substitute({"text": "##{Literal} #{Tricky}"}, {"Tricky": "#{Secret}", "Secret": "leaked"})
    assert result == {"text": "#{Literal} #{Secret}"}


def test_secrets_are_masked_raw_url_encoded_and_json_escaped():
    # given a secret with characters that encodings change
    secret = 'p@ss/wo"rd+1'
    text = f'raw={secret} url=p%40ss%2Fwo%22rd%2B1 json={{"token": "p@ss/wo\\"rd+1"}}'

    # when the text is masked
    masked = mask(text, [secret, ""])

    # then no form of the secret is left
    assert masked == f'raw={MASK} url={MASK} json={{"token": "{MASK}"}}'


def test_a_secret_containing_another_is_masked_whole():
    # given two secrets, one inside the other, when masked, then the longer one leaves no tail
    assert mask("key=abcdef", ["abc", "abcdef"]) == f"key={MASK}"


def test_plan_time_substitution_keeps_secret_references_and_literals_for_run_time():
    # given parameters with a public variable whose value looks like a reference, a secret and an escape
    from deployments.variables import substitute_public

    parameters = {"url": "https://#{Host}/x", "auth": "Bearer #{Token}", "literal": "##{Kept}", "n": 3}

    # when they are substituted at plan time, then again at run time with the secret only
    planned = substitute_public(parameters, {"Host": "h#{Token}"}, ["Token"])
    at_run_time = substitute(planned, {"Token": "s3cret"})

    # then the stored plan holds no secret, and the run-time result is what one substitution would give
    assert "s3cret" not in str(planned)
    assert at_run_time == {"url": "https://h#{Token}/x", "auth": "Bearer s3cret", "literal": "#{Kept}", "n": 3}


def test_plan_time_substitution_reports_every_unknown_name():
    from deployments.variables import substitute_public

    with pytest.raises(UnknownVariablesError) as raised:
        substitute_public({"a": "#{Nope} #{Secret} #{Also}"}, {}, ["Secret"])
    assert raised.value.names == ["Also", "Nope"]

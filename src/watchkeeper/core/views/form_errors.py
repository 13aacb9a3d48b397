"""Errors an action raised, put back on the form that asked for it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def apply_model_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a ValidationError (a model's full_clean(), an action's refusal) on the form: each
    field's messages on that field when the form has it, the rest on the form itself."""
    if hasattr(error, "error_dict"):
        for name, errors in error.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)

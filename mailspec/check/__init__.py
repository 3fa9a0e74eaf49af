"""Check pass: rules that span more than one statement. All problems are collected."""

from mailspec.check.check import check_spec

__all__ = ["check_spec"]

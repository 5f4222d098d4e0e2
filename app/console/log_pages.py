"""The console's log pages (work in progress)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

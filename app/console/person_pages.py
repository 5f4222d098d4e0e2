"""The console's person pages (work in progress)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

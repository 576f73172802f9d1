"""Thin views: parse input, check access (queueapp.access), call one service."""

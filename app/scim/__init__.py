"""SCIM 2.0 push (RFC 7643/7644): IdPs keep people and group memberships current through the sync service."""

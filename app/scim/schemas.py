"""What the SCIM service serves: Users (with the enterprise extension) and Groups, and its capabilities.

Built on ``scim2-models``: the provider yields the ``/Schemas``, ``/ResourceTypes`` and
``/ServiceProviderConfig`` documents and the pydantic models every request is validated against.
"""

from __future__ import annotations

from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    External,
    Filter,
    Group,
    Patch,
    Reference,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UserResource: Any = User[EnterpriseUser]  # the model of a User with the enterprise extension
MAX_RESULTS = 200  # the most resources one list answer holds (count is capped to it)


def service_provider_config() -> ServiceProviderConfig:
    """PATCH, filters, sorting and ETags; no bulk and no password changes (we keep no credentials)."""
    return ServiceProviderConfig(
        documentation_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc7644"),
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken, name="OAuth Bearer Token", primary=True,
            description="A JWT access token of the company IdP with the accessgov.directory scope",
            spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"))],
    )


def build_provider() -> ScimProvider:
    """The resources served and how lenient the service is with what IdPs send.

    Microsoft Entra ID sends PATCH ``remove`` operations whose ``value`` selects the entries to
    remove, and ``replace`` operations whose path filter matches no entry yet: both are accepted.
    """
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(UserResource), ResourceType.from_resource(Group)],
        config=service_provider_config(),
        policy=ScimPolicy(remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                          unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create),
    )

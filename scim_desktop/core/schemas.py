"""The schemas this server supports (RFC 7643 §4, §7, §8.7) and their discovery documents.

One definition serves three purposes: validating input, answering filters with the right
case rules (``caseExact``), and describing the server at ``/Schemas``, ``/ResourceTypes``
and ``/ServiceProviderConfig`` (RFC 7644 §4), so what is advertised is what is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scim_desktop.core.paths import AttrPath

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

#: Paging limits, advertised in ServiceProviderConfig (RFC 7644 §3.4.2.4, RFC 9865).
DEFAULT_COUNT = 100
MAX_COUNT = 1000


def _by_name(attributes: tuple[Attribute, ...]) -> dict[str, Attribute]:
    """Definitions by lower-cased name, and by their own spelling (found without lower())."""
    out: dict[str, Attribute] = {}
    for attr in attributes:
        out.setdefault(attr.name.lower(), attr)
        out.setdefault(attr.name, attr)
    return out


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute definition with the characteristics of RFC 7643 §2.2 and §7."""

    name: str
    type: str = "string"  # string boolean decimal integer dateTime reference binary complex
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly readWrite immutable writeOnly
    returned: str = "default"  # always never default request
    uniqueness: str = "none"  # none server global
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    #: Sub-attributes by lower-cased name (looked up for every value of every request).
    _subs: dict[str, Attribute] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subs", _by_name(self.sub_attributes))

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), or None."""
        found = self._subs.get(name)
        return found if found is not None else self._subs.get(name.lower())

    def to_scim(self) -> dict[str, Any]:
        """This definition as RFC 7643 §7 describes attributes in a Schema resource."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [a.to_scim() for a in self.sub_attributes]
        return out


@dataclass(frozen=True, slots=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    #: Attributes by lower-cased name.
    _by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", _by_name(self.attributes))

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), or None."""
        found = self._by_name.get(name)
        return found if found is not None else self._by_name.get(name.lower())

    def to_scim(self, base_url: str = "") -> dict[str, Any]:
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 §6): its core schema and the extensions it accepts."""

    id: str
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = field(default=())  # (schema, required)

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema.id, *(s.id for s, _ in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        lowered = urn.lower()
        for schema, _required in self.extensions:
            if schema.id.lower() == lowered:
                return schema
        return None

    def schema_for(self, urn: str | None) -> Schema | None:
        """The schema a path's URN prefix names (None: the core schema); None if unknown."""
        if urn is None or urn.lower() == self.schema.id.lower():
            return self.schema
        return self.extension(urn)

    def resolve(self, path: AttrPath) -> Attribute | None:
        """The definition a path refers to (its sub-attribute when it names one), or None."""
        schema = self.schema_for(path.urn)
        if schema is None:
            return None
        attr = schema.attribute(path.attr)
        if attr is None or path.sub is None:
            return attr
        return attr.sub(path.sub)

    def to_scim(self, base_url: str = "") -> dict[str, Any]:
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": s.id, "required": required} for s, required in self.extensions
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url}/ResourceTypes/{self.id}",
            },
        }


# --- building blocks ---------------------------------------------------------------------------
def _s(name: str, description: str = "", **kw: Any) -> Attribute:
    return Attribute(name, "string", description=description, **kw)


def _multi(name: str, description: str, subs: tuple[Attribute, ...], **kw: Any) -> Attribute:
    return Attribute(
        name, "complex", multi_valued=True, description=description, sub_attributes=subs, **kw
    )


def _typed_value_subs(
    value_desc: str, types: tuple[str, ...], value_type: str = "string"
) -> tuple[Attribute, ...]:
    """The value / display / type / primary sub-attributes shared by emails, phoneNumbers..."""
    refs = ("external",) if value_type == "reference" else ()
    return (
        Attribute("value", value_type, description=value_desc, reference_types=refs),
        _s("display", "A human-readable name, primarily used for display purposes."),
        _s("type", "A label indicating the attribute's function.", canonical_values=types),
        Attribute(
            "primary",
            "boolean",
            description="Indicates the 'primary' or preferred attribute value.",
        ),
    )


_ID = _s(
    "id",
    "Unique identifier for the resource, assigned by the service provider.",
    case_exact=True,
    mutability="readOnly",
    returned="always",
    uniqueness="server",
)
_EXTERNAL_ID = _s(
    "externalId",
    "Identifier for the resource as defined by the provisioning client.",
    case_exact=True,
)
_META = Attribute(
    "meta",
    "complex",
    mutability="readOnly",
    description="Resource metadata.",
    sub_attributes=(
        _s(
            "resourceType", "The name of the resource type.", case_exact=True, mutability="readOnly"
        ),
        Attribute("created", "dateTime", mutability="readOnly", description="Creation time."),
        Attribute(
            "lastModified", "dateTime", mutability="readOnly", description="Last change time."
        ),
        Attribute(
            "location",
            "reference",
            case_exact=True,
            mutability="readOnly",
            reference_types=("uri",),
            description="The URI of the resource.",
        ),
        _s(
            "version", "The version (ETag) of the resource.", case_exact=True, mutability="readOnly"
        ),
    ),
)
_COMMON = (_ID, _EXTERNAL_ID, _META)

_ADDRESS_SUBS = (
    _s("formatted", "The full mailing address, formatted for display."),
    _s("streetAddress", "The full street address component."),
    _s("locality", "The city or locality component."),
    _s("region", "The state or region component."),
    _s("postalCode", "The zip code or postal code component."),
    _s("country", "The country name component (ISO 3166-1 alpha-2)."),
    _s(
        "type",
        "A label indicating the attribute's function.",
        canonical_values=("work", "home", "other"),
    ),
    Attribute("primary", "boolean", description="The primary mailing address."),
)

USER = Schema(
    USER_SCHEMA,
    "User",
    "User Account",
    (
        _s(
            "userName",
            "Unique identifier for the User, used by the user to authenticate.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "name",
            "complex",
            description="The components of the user's real name.",
            sub_attributes=(
                _s("formatted", "The full name, formatted for display."),
                _s("familyName", "The family name of the User."),
                _s("givenName", "The given name of the User."),
                _s("middleName", "The middle name(s) of the User."),
                _s("honorificPrefix", "The honorific prefix(es) of the User."),
                _s("honorificSuffix", "The honorific suffix(es) of the User."),
            ),
        ),
        _s("displayName", "The name of the User, suitable for display to end-users."),
        _s("nickName", "The casual way to address the user."),
        Attribute(
            "profileUrl",
            "reference",
            reference_types=("external",),
            description="A fully qualified URL pointing to a page representing the User.",
        ),
        _s("title", "The user's title, such as 'Vice President'."),
        _s("userType", "Used to identify the relationship between the organization and the user."),
        _s("preferredLanguage", "Indicates the User's preferred written or spoken language."),
        _s("locale", "Used to indicate the User's default location (e.g. 'en-US')."),
        _s("timezone", "The User's time zone in the 'Olson' time zone database format."),
        Attribute("active", "boolean", description="The User's administrative status."),
        _s(
            "password",
            "The User's cleartext password; stored only as a salted hash.",
            mutability="writeOnly",
            returned="never",
        ),
        _multi(
            "emails",
            "Email addresses for the user.",
            _typed_value_subs("Email address for the User.", ("work", "home", "other")),
        ),
        _multi(
            "phoneNumbers",
            "Phone numbers for the User.",
            _typed_value_subs(
                "Phone number of the User.", ("work", "home", "mobile", "fax", "pager", "other")
            ),
        ),
        _multi(
            "ims",
            "Instant messaging addresses for the User.",
            _typed_value_subs(
                "Instant messaging address for the User.",
                ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
            ),
        ),
        _multi(
            "photos",
            "URLs of photos of the User.",
            _typed_value_subs(
                "URL of a photo of the User.", ("photo", "thumbnail"), value_type="reference"
            ),
        ),
        _multi("addresses", "A physical mailing address for this User.", _ADDRESS_SUBS),
        _multi(
            "groups",
            "A list of groups to which the user belongs, derived from group membership.",
            (
                _s("value", "The identifier of the User's group.", mutability="readOnly"),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User", "Group"),
                    mutability="readOnly",
                    description="The URI of the Group.",
                ),
                _s("display", "A human-readable name of the group.", mutability="readOnly"),
                _s(
                    "type",
                    "How the membership is derived ('direct' or 'indirect').",
                    canonical_values=("direct", "indirect"),
                    mutability="readOnly",
                ),
            ),
            mutability="readOnly",
        ),
        _multi(
            "entitlements",
            "A list of entitlements for the User.",
            _typed_value_subs("The value of an entitlement.", ()),
        ),
        _multi(
            "roles", "A list of roles for the User.", _typed_value_subs("The value of a role.", ())
        ),
        _multi(
            "x509Certificates",
            "A list of certificates issued to the User.",
            _typed_value_subs("The value of an X.509 certificate.", (), value_type="binary"),
        ),
    ),
)

GROUP = Schema(
    GROUP_SCHEMA,
    "Group",
    "Group",
    (
        _s("displayName", "A human-readable name for the Group.", required=True),
        _multi(
            "members",
            "A list of members of the Group.",
            (
                _s("value", "Identifier of the member of this Group.", mutability="immutable"),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User", "Group"),
                    mutability="immutable",
                    description="The URI of the member.",
                ),
                _s("display", "A human-readable name of the member.", mutability="readOnly"),
                _s(
                    "type",
                    "The type of member ('User' or 'Group').",
                    canonical_values=("User", "Group"),
                    mutability="immutable",
                ),
            ),
        ),
    ),
)

ENTERPRISE_USER = Schema(
    ENTERPRISE_USER_SCHEMA,
    "EnterpriseUser",
    "Enterprise User",
    (
        _s("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
        _s("costCenter", "Identifies the name of a cost center."),
        _s("organization", "Identifies the name of an organization."),
        _s("division", "Identifies the name of a division."),
        _s("department", "Identifies the name of a department."),
        Attribute(
            "manager",
            "complex",
            description="The User's manager.",
            sub_attributes=(
                _s("value", "The id of the SCIM resource representing the User's manager."),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User",),
                    description="The URI of the manager's SCIM resource.",
                ),
                _s("displayName", "The displayName of the User's manager.", mutability="readOnly"),
            ),
        ),
    ),
)

# The common attributes (id, externalId, meta) belong to every resource (RFC 7643 §3.1); they
# are part of the resource types' core schema for lookups but not listed under /Schemas.
_USER_WITH_COMMON = Schema(USER.id, USER.name, USER.description, _COMMON + USER.attributes)
_GROUP_WITH_COMMON = Schema(GROUP.id, GROUP.name, GROUP.description, _COMMON + GROUP.attributes)

USER_TYPE = ResourceType(
    "User", "User", "/Users", "User Account", _USER_WITH_COMMON, ((ENTERPRISE_USER, False),)
)
GROUP_TYPE = ResourceType("Group", "Group", "/Groups", "Group", _GROUP_WITH_COMMON)

RESOURCE_TYPES: dict[str, ResourceType] = {"User": USER_TYPE, "Group": GROUP_TYPE}
SCHEMAS: dict[str, Schema] = {s.id: s for s in (USER, GROUP, ENTERPRISE_USER)}


def service_provider_config(base_url: str = "", *, auth_mode: str = "bearer") -> dict[str, Any]:
    """RFC 7644 §4 / RFC 7643 §5: what this server supports, exactly as it behaves."""
    schemes: list[dict[str, Any]] = []
    if auth_mode == "bearer":
        schemes.append(
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "Authorization: Bearer <token> (Okta's 'HTTP Header' mode)",
                "primary": True,
            }
        )
    elif auth_mode == "basic":
        schemes.append(
            {
                "type": "httpbasic",
                "name": "HTTP Basic",
                "description": "Authorization: Basic base64(user:password)",
                "primary": True,
            }
        )
    elif auth_mode == "oauth":
        schemes.append(
            {
                "type": "oauth2",
                "name": "OAuth 2.0",
                "description": "Authorization: Bearer <access token> from this server's "
                "/oauth/token (authorization code grant with refresh tokens)",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6749",
                "primary": True,
            }
        )
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/scim-desktop/scim-desktop#readme",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        # RFC 9865 §4: cursor and index pagination both work; index is the default.
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_COUNT,
            "maxPageSize": MAX_COUNT,
            "cursorTimeout": 3600,
        },
        "authenticationSchemes": schemes,
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }

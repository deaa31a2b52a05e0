"""Products, their licenses and prices, versions and the files of each version.

A version's files are content-addressed by SHA-256. Files with role ``train`` or ``holdout`` are the
provider's private reference data: they live in the separate ``reference`` storage and are never shown
or served to anyone but members of the owning organization.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from marketplace.accounts.models import Organization
from marketplace.catalog.licenses import LICENSE_CHOICES


class Domain(models.TextChoices):
    CENSUS = "census", "Census & demographics"
    FINANCE = "finance", "Finance"
    HEALTHCARE = "healthcare", "Healthcare"
    RETAIL = "retail", "Retail & e-commerce"
    SCIENCE = "science", "Science"
    EDUCATION = "education", "Education"
    SPORTS = "sports", "Sports & fitness"
    VISION = "vision", "Vision & imaging"
    FOOD = "food", "Food & agriculture"
    OTHER = "other", "Other"


class ProductKind(models.TextChoices):
    DATASET = "dataset", "Dataset"
    GENERATOR = "generator", "Generator"


class Product(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="products")
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=160)
    summary = models.CharField(max_length=300)
    description_md = models.TextField(blank=True)
    description_html = models.TextField(blank=True, editable=False, help_text="Sanitized rendering.")
    domain = models.CharField(max_length=20, choices=Domain.choices)
    tags = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=10, choices=ProductKind.choices, default=ProductKind.DATASET)
    is_listed = models.BooleanField(default=True, help_text="Staff can unlist a product (moderation).")
    unlisted_by_staff_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when staff unlisted the product (moderation): only staff can list it again.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Denormalized from the latest published version so the catalog filters without joins.
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    search_text = models.TextField(blank=True, editable=False)
    formats = models.CharField(max_length=40, blank=True, editable=False, help_text="e.g. ',csv,parquet,'")
    row_count = models.BigIntegerField(null=True, blank=True, editable=False)
    column_count = models.IntegerField(null=True, blank=True, editable=False)
    price_from_minor = models.BigIntegerField(null=True, blank=True, editable=False)
    price_currency = models.CharField(max_length=3, blank=True, editable=False)
    quality_score = models.FloatField(null=True, blank=True, editable=False)
    quality_grade = models.CharField(max_length=1, blank=True, editable=False)
    privacy_grade = models.CharField(max_length=1, blank=True, editable=False)
    dcr_share = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [
            models.Index(fields=["domain", "published_at"]),
            models.Index(fields=["is_listed", "published_at"]),
        ]

    def __str__(self) -> str:
        return self.title


class ProductLicense(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="licenses")
    code = models.CharField(max_length=20, choices=LICENSE_CHOICES)
    price_minor = models.BigIntegerField(help_text="Price in the currency's minor unit (cents for USD).")
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        ordering = ["price_minor"]
        constraints = [
            models.UniqueConstraint(fields=["product", "code"], name="unique_product_license"),
            models.CheckConstraint(condition=models.Q(price_minor__gte=0), name="license_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product} / {self.code}"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft: schema to confirm"
    SUBMITTED = "submitted", "Submitted: waiting for certification"
    CERTIFYING = "certifying", "Certifying"
    CERTIFIED = "certified", "Certified"
    FAILED = "failed", "Certification failed"


class ProductVersion(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    changelog = models.TextField(blank=True)
    target_column = models.CharField(max_length=200, blank=True)
    sdv_metadata = models.JSONField(default=dict, blank=True)
    # Plausibility choices passed to the engine: {"dismissed": [{"id", "reason"}], "declared": [statement]},
    # and for platform-fitted generators which rules SDV constraints enforce ("enforced", "not_enforced").
    rules = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    certified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product", "-number"]
        constraints = [models.UniqueConstraint(fields=["product", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.product.slug} v{self.number}"

    @property
    def is_editable(self) -> bool:
        return self.status == VersionStatus.DRAFT


class FileRole(models.TextChoices):
    SYNTHETIC = "synthetic", "Synthetic table"
    TRAIN = "train", "Reference: real train rows (private)"
    HOLDOUT = "holdout", "Reference: real holdout rows (private)"


REFERENCE_ROLES = (FileRole.TRAIN, FileRole.HOLDOUT)


class VersionFile(models.Model):
    version = models.ForeignKey(ProductVersion, on_delete=models.CASCADE, related_name="files")
    role = models.CharField(max_length=10, choices=FileRole.choices)
    table_name = models.CharField(max_length=100)
    original_filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    storage_name = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    rows = models.BigIntegerField()
    column_count = models.IntegerField()
    profile = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Reference data deleted by its owner.")

    class Meta:
        ordering = ["role", "table_name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "role", "table_name"], name="unique_file_role_table"),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.role} {self.table_name}"

    @property
    def is_reference(self) -> bool:
        return self.role in REFERENCE_ROLES

    @property
    def storage_alias(self) -> str:
        return "reference" if self.is_reference else "default"


class Upload(models.Model):
    """A resumable, chunked upload of one file (used by the CLI and scripts for large files).

    Chunks arrive as raw request bodies, each hashed on the way; they must come in order (a chunk already
    received may be sent again and is then only compared). ``complete`` checks the size and the SHA-256
    of the whole file and queues its validation (parse, schema, statistics) in a worker, off the request
    path; a complete upload is then attached to a version by id, which reuses the validation's profile.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Receiving chunks"
        COMPLETE = "complete", "Complete"
        ATTACHED = "attached", "Attached to a version"

    class Validation(models.TextChoices):
        PENDING = "pending", "Not checked yet"
        RUNNING = "running", "Being checked"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Refused"

    class Transport(models.TextChoices):
        SERVER = "server", "Chunks sent to this server"
        S3 = "s3", "Parts sent straight to the object store (presigned multipart)"

    id = models.CharField(primary_key=True, max_length=40)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="uploads",
        null=True,
        help_text="The provider organization whose upload quota this session counts against.",
    )
    transport = models.CharField(max_length=10, choices=Transport.choices, default=Transport.SERVER)
    object_key = models.CharField(
        max_length=300, blank=True, help_text="S3 transport: the key the parts are assembled under."
    )
    multipart_id = models.CharField(max_length=300, blank=True, help_text="S3 transport: the UploadId.")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(help_text="Declared total size in bytes.")
    chunk_size = models.IntegerField()
    received_bytes = models.BigIntegerField(default=0)
    chunk_sha256 = models.JSONField(
        default=list,
        help_text="Each received chunk's SHA-256 (hex) as the client sent and the server checked it; "
        "empty where the client sent none.",
    )
    expected_sha256 = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    validation = models.CharField(max_length=10, choices=Validation.choices, default=Validation.PENDING)
    validation_progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the file read.")
    format = models.CharField(max_length=10, blank=True, help_text="csv, parquet or jsonl, once valid.")
    profile = models.JSONField(null=True, blank=True, help_text="The table's profile, once valid.")
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True, help_text="Why the file was refused.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.filename} ({self.status})"

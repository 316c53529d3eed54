-- The social plug-in's own media uploads (business/social/uploads.py): an image or video
-- a person uploaded for the account, kept under the plug-in's data directory
-- (social/media/<account>/<media_id><ext>) and described here as ffprobe read it, so a
-- post attaches it by its id (md_...) as it does a project asset.

CREATE TABLE social_media_uploads (
    account_id TEXT NOT NULL,
    media_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    width INTEGER,
    height INTEGER,
    duration_s DOUBLE PRECISION,
    sha256 TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, media_id)
);
CREATE INDEX social_media_uploads_created ON social_media_uploads (account_id, created_at);

// Audio files onto the server (upload endpoint of the assets API), then as clips in the document.
import { api } from './api.js'

/**
 * Upload `blob` as an audio asset; resolves with {source, frames, sample_rate}.
 * `features.upload` is the upload path template ("/projects/{project_id}/assets").
 */
export async function uploadAudio ({ features, projectId, token, blob, name }) {
  if (!features.upload) throw new Error('this server does not accept audio uploads yet')
  const path = features.upload.replace('{project_id}', encodeURIComponent(projectId))
  const query = `?name=${encodeURIComponent(name)}`
  const asset = await api(path + query, {
    token, method: 'POST', body: blob,
    headers: { 'Content-Type': blob.type || 'application/octet-stream' }
  })
  return {
    source: String(asset.source),
    frames: Number(asset.frames),
    sampleRate: Number(asset.sample_rate)
  }
}

/** The clip length in project frames of an asset with `frames` at `rate`. */
export function projectFrames (frames, rate, projectRate) {
  return rate && rate !== projectRate ? Math.round(frames * projectRate / rate) : frames
}

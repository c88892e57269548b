// The client's one error type: every refusal names the file (and the list or frame).
export class AnnpackError extends Error {
  constructor(message, { file = null, list = null, kind = 'error' } = {}) {
    super(message);
    this.name = 'AnnpackError';
    this.file = file;
    this.list = list;
    this.kind = kind; // 'http', 'range', 'digest', 'signature', 'format', 'arg'
  }
}

// A byte-bounded LRU of verified pieces (lists, index chunks, decompressed frames).
export class Lru {
  constructor(maxBytes) {
    this.max = maxBytes;
    this.bytes = 0;
    this.map = new Map(); // insertion order = recency
  }

  get(key) {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v.value;
  }

  set(key, value, size) {
    if (this.map.has(key)) {
      this.bytes -= this.map.get(key).size;
      this.map.delete(key);
    }
    this.map.set(key, { value, size });
    this.bytes += size;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.max || this.map.size === 1) break;
      this.map.delete(k);
      this.bytes -= v.size;
    }
  }
}

# What llmctl reads from a GGUF header (gguf.cpp, through tests/tools/gguf_shape.cpp) agrees with
# an independent parser, the @huggingface/gguf package from the npm registry (installed into the
# build dir by tests/tools/npm-install.sh), on headers shaped like real models (written here by a
# writer of this test's own, as sparse files of the weights' size: no weights are written); and
# the memory estimate follows its formula from the fields that parser read, taken as llama.cpp
# takes them.
. "$TEST_LIB"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BUILD_DIR:?the build dir, where the npm prefix and the tools live}"
prefix=$(bash "$here/../tools/npm-install.sh" "$BUILD_DIR") || fail "could not install the npm packages (see above)"
shape="$BUILD_DIR/bin/llmctl-test-gguf-shape"
[ -x "$shape" ] || fail "no $shape (build the tests)"

python3 - "$T" <<'PY'
import struct, sys, os
d = sys.argv[1]
def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
T = {"u32": (4, "<I"), "i32": (5, "<i"), "u64": (10, "<Q"), "f32": (6, "<f"), "bool": (7, "<?")}
def kv(key, typ, val):
    if typ == "str": return s(key) + struct.pack("<I", 8) + s(val)
    if typ == "strs": return s(key) + struct.pack("<IIQ", 9, 8, len(val)) + b"".join(s(v) for v in val)
    if typ == "u32s": return s(key) + struct.pack("<IIQ", 9, 4, len(val)) + b"".join(struct.pack("<I", v) for v in val)
    code, fmt = T[typ]; return s(key) + struct.pack("<I", code) + struct.pack(fmt, val)
def write(name, size, pairs):
    body = b"".join(kv(*p) for p in pairs)
    with open(os.path.join(d, name), "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + body)
        f.truncate(size)
def model(arch, layers, embd, heads, kv_heads, ctx, extra=()):
    return [("general.architecture", "str", arch), ("general.name", "str", f"{arch} test"),
            (f"{arch}.context_length", "u32", ctx), (f"{arch}.embedding_length", "u32", embd),
            (f"{arch}.block_count", "u32", layers), (f"{arch}.feed_forward_length", "u32", embd * 4),
            (f"{arch}.attention.head_count", "u32", heads), (f"{arch}.attention.head_count_kv", "u32", kv_heads),
            (f"{arch}.attention.layer_norm_rms_epsilon", "f32", 1e-5), ("general.file_type", "u32", 15),
            ("tokenizer.ggml.add_bos_token", "bool", True),
            ("tokenizer.ggml.tokens", "strs", [f"<t{i}>" for i in range(5000)]), *extra]
write("llama-7b.gguf", 4_080_000_000, model("llama", 32, 4096, 32, 32, 4096))
write("llama-13b.gguf", 7_870_000_000, model("llama", 40, 5120, 40, 40, 4096))
write("llama-70b.gguf", 41_420_000_000, model("llama", 80, 8192, 64, 8, 4096))
write("qwen2-7b.gguf", 4_680_000_000, model("qwen2", 28, 3584, 28, 4, 32768))
gemma = [p for p in model("gemma2", 4, 2304, 8, 4, 8192) if not p[0].endswith("head_count_kv")]
write("gemma-like.gguf", 1_630_000_000, gemma + [("gemma2.attention.head_count_kv", "u32s", [4, 4, 0, 4]),
        ("gemma2.attention.key_length", "u32", 256), ("gemma2.attention.value_length", "i32", 256)])
# A key length of its own and none for values (MiniCPM3's shape): values take the embedding over the heads.
write("minicpm-like.gguf", 2_500_000_000, model("minicpm3", 62, 2560, 40, 40, 32768, [("minicpm3.attention.key_length", "u32", 96)]))
PY
cat >"$T/read.mjs" <<'EOF_JS'
const { gguf } = await import(process.env.GGUF_PKG);
for (const file of process.argv.slice(2)) {
  const { metadata } = await gguf(file, { allowLocalFile: true });
  const keep = {};
  for (const [k, v] of Object.entries(metadata)) if (!k.startsWith("tokenizer.")) keep[k] = v;
  console.log(JSON.stringify({ file, metadata: keep }, (k, v) => (typeof v === "bigint" ? Number(v) : v)));
}
EOF_JS
files=("$T"/llama-7b.gguf "$T"/llama-13b.gguf "$T"/llama-70b.gguf "$T"/qwen2-7b.gguf "$T"/gemma-like.gguf "$T"/minicpm-like.gguf)
GGUF_PKG="$prefix/node_modules/@huggingface/gguf/dist/index.mjs" node "$T/read.mjs" "${files[@]}" >"$T/npm.jsonl" ||
  fail "@huggingface/gguf could not read the headers: $(cat "$T/npm.jsonl")"
"$shape" "${files[@]}" >"$T/llmctl.jsonl" || fail "llmctl could not read the headers: $(cat "$T/llmctl.jsonl")"
for f in "${files[@]}"; do
  "$shape" --estimate "$T" llama-server -m "$(basename "$f")" -c 8192 --port 8080 >>"$T/estimate.jsonl" || fail "estimate of $f: $(tail -1 "$T/estimate.jsonl")"
done
"$shape" --estimate "$T" llama-server -m qwen2-7b.gguf >>"$T/estimate.jsonl" || fail "estimate without -c"

python3 - "$T" <<'PY'
import json, os, sys
d = sys.argv[1]
npm = [json.loads(l) for l in open(os.path.join(d, "npm.jsonl"))]
ours = [json.loads(l) for l in open(os.path.join(d, "llmctl.jsonl"))]
est = [json.loads(l) for l in open(os.path.join(d, "estimate.jsonl"))]
assert len(npm) == len(ours) == len(est) - 1 == 6, (len(npm), len(ours), len(est))
def expected(m, size):
    # llama.cpp's reading: a layer's count where it needs one is the first layer's; both head
    # lengths default to the embedding over the heads.
    a = m["general.architecture"]
    g = lambda k, default=None: m.get(f"{a}.{k}", default)
    first = lambda v: v[0] if isinstance(v, list) else v
    layers, embd = g("block_count"), g("embedding_length")
    heads = first(g("attention.head_count"))
    kv = g("attention.head_count_kv", g("attention.head_count"))
    kv_total = sum(kv) if isinstance(kv, list) else kv * layers
    return {"architecture": a, "block_count": layers, "context_length": g("context_length"), "embedding_length": embd,
            "head_count": heads, "kv_heads_total": kv_total, "key_length": g("attention.key_length", embd // heads),
            "value_length": g("attention.value_length", embd // heads), "split_count": 1, "file_size": size}
problems = []
for n, o, e in zip(npm, ours, est):
    want = expected(n["metadata"], os.path.getsize(n["file"]))
    if o != want: problems.append(f"{os.path.basename(n['file'])}: llmctl read {o}, @huggingface/gguf {want}")
    # The formula (memory_estimate.hpp): weights + KV cache (context x KV heads x (key + value
    # length) x 2 bytes, f16) + compute (context x 512 x heads x 4 bytes, no flash attention)
    # + 512 MiB + weights / 20.
    kv = 8192 * want["kv_heads_total"] * (want["key_length"] + want["value_length"]) * 2
    total = want["file_size"] + kv + 8192 * 512 * want["head_count"] * 4 + (512 << 20) + want["file_size"] // 20
    if (e["kv_cache"], e["total"], e["context"]) != (kv, total, 8192): problems.append(f"{n['file']}: estimate {e}, formula kv {kv} total {total}")
q = expected(npm[3]["metadata"], os.path.getsize(npm[3]["file"]))
if (ours[5]["key_length"], ours[5]["value_length"]) != (96, 64): problems.append(f"minicpm-like head lengths: {ours[5]}")
if est[6]["context"] != 32768 or est[6]["kv_cache"] != 32768 * q["kv_heads_total"] * (q["key_length"] + q["value_length"]) * 2:
    problems.append(f"without -c the trained context: {est[6]}")
# Known sizes: the f16 KV cache of llama 7B, 13B and 70B at 8,192 tokens is 4 GiB, 6.25 GiB and 2.5 GiB.
if [e["kv_cache"] for e in est[:3]] != [4 << 30, 6400 << 20, 2560 << 20]: problems.append(f"KV caches {[e['kv_cache'] for e in est[:3]]}")
if problems: sys.exit("\n".join(problems))
PY
[ $? = 0 ] || fail "the cross-check found differences (above)"
# A header cut short is an error naming the file.
head -c 5000 "$T/llama-7b.gguf" >"$T/cut.gguf"
out=$("$shape" "$T/cut.gguf") && fail "a cut header was read: $out"
echo "$out" | grep -q "cut.gguf: the file ends inside its GGUF header" || fail "a cut header: $out"
echo "gguf_crosscheck: ok"

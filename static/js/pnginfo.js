// "Read PNG info" on /generate/: the `parameters` text chunk of a dropped or picked PNG fills the form.
// Reads tEXt, zTXt and iTXt chunks in the browser (nothing is uploaded), and understands three writers:
// ours and AUTOMATIC1111's infotext, Fooocus' A1111 scheme ("Raw prompt") and Fooocus' own JSON scheme.
(function () {
  "use strict";

  var PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
  // A1111's modules/infotext_utils.py pattern (generator.engine.infotext uses the same one).
  var PARAM_RE = /\s*(\w[\w \-\/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

  function latin1(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += String.fromCharCode(bytes[i]); }
    return out;
  }

  function inflate(bytes) {  // zlib stream (PNG's compression method 0)
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }

  function indexOfZero(bytes, from) {
    for (var i = from; i < bytes.length; i++) { if (bytes[i] === 0) { return i; } }
    return -1;
  }

  // {keyword: text} of every text chunk. Rejects with Error("not a PNG") for anything else.
  function readTextChunks(buffer) {
    var bytes = new Uint8Array(buffer);
    for (var s = 0; s < 8; s++) {
      if (bytes[s] !== PNG_SIGNATURE[s]) { return Promise.reject(new Error("not a PNG")); }
    }
    var view = new DataView(buffer);
    var pending = [];
    var pos = 8;
    while (pos + 12 <= bytes.length) {
      var length = view.getUint32(pos);
      var type = latin1(bytes.subarray(pos + 4, pos + 8));
      var data = bytes.subarray(pos + 8, Math.min(pos + 8 + length, bytes.length));
      pos += 12 + length;
      var zero = indexOfZero(data, 0);
      if (zero < 0) { if (type === "IEND") { break; } continue; }
      var key = latin1(data.subarray(0, zero));
      if (type === "tEXt") {
        pending.push(Promise.resolve([key, latin1(data.subarray(zero + 1))]));
      } else if (type === "zTXt") {
        pending.push(inflate(data.subarray(zero + 2)).then(function (k) {
          return function (raw) { return [k, latin1(raw)]; };
        }(key)));
      } else if (type === "iTXt") {
        var compressed = data[zero + 1] === 1;
        var langEnd = indexOfZero(data, zero + 3);
        var transEnd = langEnd < 0 ? -1 : indexOfZero(data, langEnd + 1);
        if (transEnd < 0) { continue; }
        var body = data.subarray(transEnd + 1);
        pending.push((compressed ? inflate(body) : Promise.resolve(body)).then(function (k) {
          return function (raw) { return [k, new TextDecoder("utf-8").decode(raw)]; };
        }(key)));
      } else if (type === "IEND") {
        break;
      }
    }
    return Promise.all(pending).then(function (pairs) {
      var chunks = {};
      pairs.forEach(function (p) { chunks[p[0]] = p[1]; });
      return chunks;
    });
  }

  // Inverse of A1111's infotext: {"Prompt", "Negative prompt", key: value, ...} (strings).
  function parseInfotext(text) {
    var lines = text.trim().split("\n");
    var last = lines.pop();
    var pairs = Array.from(last.matchAll(PARAM_RE));
    if (pairs.length < 3) { lines.push(last); pairs = []; }
    var prompt = [], negative = [], inNegative = false;
    lines.forEach(function (line) {
      if (line.indexOf("Negative prompt:") === 0) {
        inNegative = true;
        line = line.slice("Negative prompt:".length).replace(/^\s+/, "");
      }
      (inNegative ? negative : prompt).push(line);
    });
    var result = { "Prompt": prompt.join("\n"), "Negative prompt": negative.join("\n") };
    pairs.forEach(function (m) {
      var value = m[2].trim();
      if (value.length >= 2 && value[0] === "\"" && value[value.length - 1] === "\"") {
        try { value = JSON.parse(value); } catch (e) { /* keep as written */ }
      }
      result[m[1]] = value;
    });
    if (result["Raw prompt"] !== undefined) { result["Prompt"] = result["Raw prompt"]; }  // Fooocus' A1111 scheme
    if (result["Raw negative prompt"] !== undefined) { result["Negative prompt"] = result["Raw negative prompt"]; }
    return result;
  }

  var FOOOCUS_SAMPLERS = { euler: "euler", euler_ancestral: "euler_a", ddim: "ddim", uni_pc: "unipc", dpmpp_2m: "dpmpp_2m" };

  // Fooocus' JSON scheme turned into the same A1111-keyed dict.
  function fromFooocus(data) {
    var out = { "Prompt": String(data.prompt || ""), "Negative prompt": String(data.negative_prompt || "") };
    if (data.steps !== undefined) { out["Steps"] = String(data.steps); }
    if (data.guidance_scale !== undefined) { out["CFG scale"] = String(data.guidance_scale); }
    if (data.seed !== undefined) { out["Seed"] = String(data.seed); }
    var size = /(\d+)\D+(\d+)/.exec(String(data.resolution || ""));
    if (size) { out["Size"] = size[1] + "x" + size[2]; }
    if (data.base_model) { out["Model"] = String(data.base_model).replace(/\.(safetensors|ckpt)$/, ""); }
    if (data.sampler) {
      var name = FOOOCUS_SAMPLERS[data.sampler];
      if (name === "dpmpp_2m" && data.scheduler === "karras") { name = "dpmpp_2m_karras"; }
      out["__scheduler"] = name || "";
      out["Sampler"] = String(data.sampler) + (data.scheduler ? " (" + data.scheduler + ")" : "");
    }
    return out;
  }

  // The dict for a `parameters` chunk: {format, fields} or null when it says nothing we know.
  function parseParameters(text) {
    var trimmed = text.trim();
    if (trimmed[0] === "{") {
      try {
        var data = JSON.parse(trimmed);
        if (data && typeof data === "object" && ("prompt" in data || "full_prompt" in data)) {
          return { format: "Fooocus", fields: fromFooocus(data) };
        }
      } catch (e) { /* not JSON: read it as infotext */ }
    }
    var fields = parseInfotext(text);
    var format = /Fooocus/.test(fields["Version"] || "") ? "Fooocus (A1111 scheme)" : "AUTOMATIC1111 infotext";
    return { format: format, fields: fields };
  }

  // Our scheduler name for an A1111 "Sampler" + "Schedule type" (labels: {name: [sampler, schedule]}).
  function schedulerFor(fields, labels) {
    if (fields["__scheduler"] !== undefined) { return fields["__scheduler"] || null; }
    var sampler = fields["Sampler"], schedule = fields["Schedule type"] || "Automatic";
    if (!sampler) { return null; }
    if (/ Karras$/.test(sampler)) { sampler = sampler.replace(/ Karras$/, ""); schedule = "Karras"; }  // A1111 < 1.9
    var exact = null, loose = null;
    Object.keys(labels).forEach(function (name) {
      var label = labels[name];
      if (label[0] !== sampler) { return; }
      if (label[1] === schedule) { exact = name; }
      if (schedule === "Automatic" && label[1] === "Karras") { loose = name; }  // A1111's DPM++ 2M default
      if (loose === null) { loose = name; }
    });
    return exact || loose;
  }

  window.RetroPngInfo = {
    readTextChunks: readTextChunks,
    parseInfotext: parseInfotext,
    parseParameters: parseParameters,
    schedulerFor: schedulerFor,
  };
})();

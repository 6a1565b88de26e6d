// /generate/ tools: token counter per 75-token chunk, size presets, hires result, LoRA picker, init picture and
// inpainting mask, and "Read PNG info" filling the form. Without JavaScript the form still submits as it is.
(function () {
  "use strict";

  function el(id) { return document.getElementById(id); }
  function json(id) { var node = el(id); return node ? JSON.parse(node.textContent) : null; }
  function setValue(id, value) {
    var input = el(id);
    if (!input) { return false; }
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }
  function hiresSide(side, scale) { return Math.round(side * scale / 8) * 8; }

  // ---------------------------------------------------------------- token counter
  function tokenCounters(form) {
    var url = form.dataset.tokensUrl, model = el("id_model");
    document.querySelectorAll(".tokens[data-for]").forEach(function (line) {
      var input = el(line.dataset.for), timer = null, asked = 0;
      if (!input) { return; }
      function update() {
        var mine = ++asked;
        var query = "?model=" + encodeURIComponent(model ? model.value : "") + "&text=" + encodeURIComponent(input.value);
        fetch(url + query, { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            if (mine !== asked) { return; }  // an older answer arriving late
            line.classList.toggle("tokens-error", !!body.error);
            if (body.error) { line.textContent = "Token count unavailable: " + body.error; return; }
            var size = body.chunk_size, chunks = body.chunks;
            var text = body.tokens + "/" + size * chunks.length + " tokens";
            if (chunks.length > 1) {
              text += " · " + chunks.length + " chunks: " + chunks.map(function (n, i) {
                return "chunk " + (i + 1) + " " + n + "/" + size;
              }).join(", ");
            }
            line.textContent = text;
            line.dataset.tokens = String(body.tokens);
            line.dataset.chunks = String(chunks.length);
          })
          .catch(function () { if (mine === asked) { line.textContent = ""; } });
      }
      function soon() { window.clearTimeout(timer); timer = window.setTimeout(update, 250); }
      input.addEventListener("input", soon);
      if (model) { model.addEventListener("change", soon); }
      update();
    });
  }

  // ---------------------------------------------------------------- size presets and the hires result
  function sizePresets() {
    var defaults = json("model-defaults") || {}, limits = json("size-limits"), box = el("size-presets");
    var model = el("id_model"), scale = el("id_hires_scale");
    if (!box || !limits || !scale) { return; }
    var presets = [[1, "1× native"], [1.5, "1.5× with hires"], [2, "2× with hires"]];
    function render() {
      box.querySelectorAll("button").forEach(function (b) { b.remove(); });
      var picked = defaults[model ? model.value : ""];
      var native = (picked && picked.width) || Number(el("id_width").value) || 512;
      presets.forEach(function (preset) {
        var side = hiresSide(native, preset[0]);
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-small preset";
        button.dataset.scale = String(preset[0]);
        button.textContent = preset[1] + " · " + side + "×" + side;
        button.disabled = side > limits.max_width || side > limits.max_height || preset[0] > limits.max_hires_scale;
        button.addEventListener("click", function () {
          setValue("id_width", native);
          setValue("id_height", native);
          setValue("id_hires_scale", preset[0]);
          if (preset[0] > 1) { el("hires").open = true; }
        });
        box.appendChild(button);
      });
    }
    function result() {
      var w = Number(el("id_width").value), h = Number(el("id_height").value), s = Number(scale.value);
      var note = el("hires-result");
      if (!note) { return; }
      note.textContent = s > 1 && w && h
        ? "Result: " + hiresSide(w, s) + "×" + hiresSide(h, s) + " (drawn at " + w + "×" + h + ", upscaled ×" + s + ", then repainted)."
        : "Off (hires upscale 1): the picture is drawn at " + w + "×" + h + ".";
    }
    if (model) { model.addEventListener("change", render); }
    ["id_width", "id_height", "id_hires_scale"].forEach(function (id) { el(id).addEventListener("input", result); });
    render();
    result();
  }

  // ---------------------------------------------------------------- LoRA picker
  function LoraPicker() {
    this.hidden = el("id_loras");
    this.list = el("lora-list");
    this.pick = el("lora-pick");
    this.loras = json("lora-models") || [];
    this.archs = json("model-architectures") || {};
    this.model = el("id_model");
    var self = this, rows = [];
    try { rows = JSON.parse(this.hidden.value || "[]"); } catch (e) { rows = []; }
    (Array.isArray(rows) ? rows : []).forEach(function (row) { self.add(row.name, row.scale); });
    el("lora-add").addEventListener("click", function () { if (self.pick.value) { self.add(self.pick.value, 1); } });
    if (this.model) { this.model.addEventListener("change", function () { self.options(); }); }
    this.options();
  }

  LoraPicker.prototype.options = function () {
    var arch = this.archs[this.model ? this.model.value : ""] || "";
    var taken = this.names();
    this.pick.replaceChildren();
    var fitting = this.loras.filter(function (l) { return !arch || !l.architecture || l.architecture === arch; });
    fitting.forEach(function (l) {
      var option = document.createElement("option");
      option.value = l.name;
      option.textContent = l.name + (l.architecture ? " (" + l.architecture + ")" : "");
      option.disabled = taken.indexOf(l.name) >= 0;
      this.pick.appendChild(option);
    }, this);
    el("lora-none").hidden = fitting.length > 0;
    this.pick.disabled = el("lora-add").disabled = fitting.length === 0;
  };

  LoraPicker.prototype.names = function () {
    return Array.from(this.list.querySelectorAll("li")).map(function (li) { return li.dataset.name; });
  };

  LoraPicker.prototype.add = function (name, scale) {
    if (!name || this.names().indexOf(name) >= 0) { return false; }
    var self = this, li = document.createElement("li");
    li.dataset.name = name;
    li.className = "lora-row";
    var label = document.createElement("span");
    label.className = "lora-name";
    label.textContent = name;
    var slider = document.createElement("input");
    slider.type = "range"; slider.min = "-2"; slider.max = "2"; slider.step = "0.05";
    slider.value = String(scale === undefined ? 1 : scale);
    slider.setAttribute("aria-label", "weight of " + name);
    var out = document.createElement("output");
    out.textContent = Number(slider.value).toFixed(2);
    slider.addEventListener("input", function () { out.textContent = Number(slider.value).toFixed(2); self.save(); });
    var remove = document.createElement("button");
    remove.type = "button"; remove.className = "btn btn-small lora-remove"; remove.textContent = "Remove";
    remove.addEventListener("click", function () { li.remove(); self.save(); self.options(); });
    li.append(label, slider, out, remove);
    this.list.appendChild(li);
    this.save();
    this.options();
    return true;
  };

  LoraPicker.prototype.save = function () {
    this.hidden.value = JSON.stringify(Array.from(this.list.querySelectorAll("li")).map(function (li) {
      return { name: li.dataset.name, scale: Number(li.querySelector("input").value) };
    }));
  };

  LoraPicker.prototype.clear = function () { this.list.replaceChildren(); this.save(); this.options(); };

  // ---------------------------------------------------------------- init picture, remix and the mask
  function pictures(form, mask) {
    var upload = el("id_init_image"), remix = el("remix-source"), id = el("id_init_image_id");
    if (remix && id && id.value) { mask.load(remix.dataset.src); }
    if (el("remix-clear")) {
      el("remix-clear").addEventListener("click", function () {
        id.value = ""; remix.hidden = true; mask.hide(); upload.focus();
      });
    }
    upload.addEventListener("change", function () {
      var file = upload.files && upload.files[0];
      if (!file) { if (!(id && id.value)) { mask.hide(); } return; }
      if (id) { id.value = ""; }
      if (remix) { remix.hidden = true; }
      mask.load(URL.createObjectURL(file)).catch(function () { mask.hide(); });
    });
    // A painted mask becomes the `mask_image` file of the form; then the form is sent as usual.
    var sending = false;
    form.addEventListener("submit", function (event) {
      if (sending || mask.editor.hidden || !mask.hasPaint()) { return; }
      event.preventDefault();
      event.stopImmediatePropagation();
      mask.toBlob().then(function (blob) {
        var files = new DataTransfer();
        files.items.add(new File([blob], "mask.png", { type: "image/png" }));
        el("id_mask_image").files = files.files;
        sending = true;
        var button = el("generate-button");
        if (button) { button.disabled = true; button.textContent = "Submitting…"; }
        form.submit();
      });
    }, true);
  }

  // ---------------------------------------------------------------- Read PNG info
  var LORA_TAG = /<lora:([^:>]+):(-?[\d.]+)>/g;

  function applyInfo(fields, format, filename, picker) {
    var filled = [], skipped = [];
    var prompt = fields["Prompt"] || "";
    var translated = fields["Translate"] === "id" && fields["Original prompt"];
    if (translated) { prompt = fields["Original prompt"]; }
    var tags = Array.from(prompt.matchAll(LORA_TAG));
    prompt = prompt.replace(LORA_TAG, "").replace(/[ ,]+$/, "").replace(/\s{2,}/g, " ").trim();
    if (setValue("id_prompt", prompt)) { filled.push("prompt"); }
    var negative = fields["Negative prompt"] || "";
    setValue("id_negative_prompt", negative);
    if (negative) { filled.push("negative prompt"); el("advanced").open = true; }
    var translate = el("id_translate");
    if (translate && !translate.disabled) { translate.checked = !!translated; }
    else if (translated) { skipped.push("translation (off on this site; the Indonesian prompt was filled in)"); }

    function number(key, id, label) {
      if (fields[key] === undefined || fields[key] === "") { return; }
      var value = Number(fields[key]);
      if (!isFinite(value)) { skipped.push(key + " " + JSON.stringify(fields[key])); return; }
      setValue(id, value);
      filled.push(label);
    }
    number("Steps", "id_steps", "steps");
    number("CFG scale", "id_guidance_scale", "CFG scale");
    number("Seed", "id_seed", "seed");
    var size = /^(\d+)x(\d+)$/.exec(fields["Size"] || "");
    if (size) { setValue("id_width", size[1]); setValue("id_height", size[2]); filled.push("size " + size[0]); }
    var hires = fields["Hires upscale"] !== undefined;
    setValue("id_hires_scale", hires ? Number(fields["Hires upscale"]) || 1 : 1);
    if (hires) {
      filled.push("hires upscale");
      el("hires").open = true;
      number("Hires steps", "id_hires_steps", "hires steps");
      if (fields["Hires upscaler"]) {
        var options = Array.from(el("id_hires_upscaler").options).map(function (o) { return o.value; });
        if (options.indexOf(fields["Hires upscaler"]) >= 0) { setValue("id_hires_upscaler", fields["Hires upscaler"]); }
        else { skipped.push("Hires upscaler \"" + fields["Hires upscaler"] + "\" (not offered here)"); }
      }
    }
    var strength = hires && fields["Hires denoising strength"] === undefined ? "id_hires_strength" : "id_strength";
    number("Denoising strength", strength, strength === "id_strength" ? "denoising strength" : "hires strength");
    number("Hires denoising strength", "id_hires_strength", "hires strength");
    number("Mask blur", "id_mask_blur", "mask blur");
    setValue("id_variation_strength", fields["Variation seed strength"] || 0);
    number("Variation seed", "id_variation_seed", "variation seed");
    if (fields["Variation seed strength"]) { filled.push("variation strength"); el("variation").open = true; }

    var labels = json("sampler-labels") || {};
    var scheduler = window.RetroPngInfo.schedulerFor(fields, labels);
    if (scheduler) { setValue("id_scheduler", scheduler); filled.push("sampler"); }
    else if (fields["Sampler"]) { skipped.push("sampler \"" + fields["Sampler"] + "\" (not offered here)"); }

    if (fields["Model"]) {
      var select = el("id_model");
      var known = Array.from(select.options).some(function (o) { return o.value === fields["Model"]; });
      if (known) { setValue("id_model", fields["Model"]); filled.push("model"); }
      else { skipped.push("model \"" + fields["Model"] + "\" (not registered here; kept " + select.value + ")"); }
    }
    picker.clear();
    tags.forEach(function (tag) {
      var registered = picker.loras.some(function (l) { return l.name === tag[1]; });
      if (registered && picker.add(tag[1], Number(tag[2]))) { filled.push("LoRA " + tag[1]); el("loras-box").open = true; }
      else { skipped.push("LoRA \"" + tag[1] + "\" (not registered here)"); }
    });
    var message = "Read " + filename + " (" + format + "): filled " + filled.join(", ") + ".";
    if (skipped.length) { message += " Not applied: " + skipped.join("; ") + "."; }
    return message;
  }

  function pngInfo(picker) {
    var drop = el("pnginfo-drop"), pick = el("pnginfo-file"), box = el("pnginfo-message");
    if (!drop || !window.RetroPngInfo) { return; }
    function say(text, bad) { box.textContent = text; box.hidden = false; box.classList.toggle("tool-error", !!bad); }
    function read(file) {
      if (!file) { return; }
      file.arrayBuffer()
        .then(window.RetroPngInfo.readTextChunks)
        .then(function (chunks) {
          var text = chunks.parameters;
          if (!text || !text.trim()) {
            say(file.name + " has no generation settings: it is a PNG without a 'parameters' text chunk " +
                "(saved by another program, or its metadata was stripped). Nothing was changed.", true);
            return;
          }
          var parsed = window.RetroPngInfo.parseParameters(text);
          say(applyInfo(parsed.fields, parsed.format, file.name, picker), false);
        })
        .catch(function (error) {
          say(error.message === "not a PNG"
            ? file.name + " is not a PNG file. Read PNG info reads the settings PNGs from retroportal, " +
              "AUTOMATIC1111 and Fooocus carry in their 'parameters' chunk."
            : "Could not read " + file.name + ": " + error.message, true);
        });
    }
    pick.addEventListener("change", function () { read(pick.files[0]); pick.value = ""; });
    drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("dragging"); });
    drop.addEventListener("dragleave", function () { drop.classList.remove("dragging"); });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      drop.classList.remove("dragging");
      read(e.dataTransfer.files[0]);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = el("generate-form");
    if (!form || !el("id_loras")) { return; }
    var picker = new LoraPicker();
    tokenCounters(form);
    sizePresets();
    pictures(form, new window.RetroMaskEditor());
    pngInfo(picker);
  });
})();

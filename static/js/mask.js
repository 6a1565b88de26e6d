// Inpainting mask painted over the init picture on /generate/: brush, eraser, brush size, clear; mouse, pen
// and touch (Pointer Events). The canvas has the picture's own proportions (at least 512 px on the long side,
// so a 64 px picture still gets a smooth edge); on submit its strokes become a black/white PNG (white =
// repaint) put into the form's `mask_image` file input. An empty canvas sends no mask (plain image to image).
(function () {
  "use strict";
  var MIN_SIDE = 512;
  var SHOW = "#ff6fa8";  // painted areas (the canvas itself is half transparent over the picture)

  function el(id) { return document.getElementById(id); }

  function MaskEditor() {
    this.editor = el("mask-editor");
    this.picture = el("mask-picture");
    this.canvas = el("mask-canvas");
    this.ctx = this.canvas.getContext("2d");
    this.size = el("mask-size");
    this.painted = false;
    this.drawing = null;
    this.bind();
  }

  MaskEditor.prototype.tool = function () {
    return el("mask-eraser").checked ? "eraser" : "brush";
  };

  // Brush radius in canvas pixels: the slider is in on-screen pixels, so it feels the same at any zoom.
  MaskEditor.prototype.radius = function () {
    var scale = this.canvas.width / Math.max(1, this.canvas.getBoundingClientRect().width);
    return Math.max(0.5, Number(this.size.value) * scale / 2);
  };

  MaskEditor.prototype.point = function (event) {
    var box = this.canvas.getBoundingClientRect();
    return {
      x: (event.clientX - box.left) * this.canvas.width / box.width,
      y: (event.clientY - box.top) * this.canvas.height / box.height,
    };
  };

  MaskEditor.prototype.stroke = function (from, to) {
    var ctx = this.ctx;
    ctx.globalCompositeOperation = this.tool() === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = SHOW;
    ctx.lineWidth = this.radius() * 2;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
    if (this.tool() === "brush") { this.painted = true; }
  };

  MaskEditor.prototype.bind = function () {
    var self = this, canvas = this.canvas;
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      self.drawing = self.point(event);
      self.stroke(self.drawing, self.drawing);
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!self.drawing) { return; }
      event.preventDefault();
      var next = self.point(event);
      self.stroke(self.drawing, next);
      self.drawing = next;
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function () {
        if (self.drawing) { self.drawing = null; self.changed(); }
      });
    });
    this.size.addEventListener("input", function () { el("mask-size-out").textContent = self.size.value; });
    el("mask-clear").addEventListener("click", function () { self.clear(); });
  };

  MaskEditor.prototype.clear = function () {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.painted = false;
    this.changed();
  };

  // Whether any pixel is painted (an eraser can undo every stroke).
  MaskEditor.prototype.hasPaint = function () {
    if (!this.painted) { return false; }
    var data = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height).data;
    for (var i = 3; i < data.length; i += 4) { if (data[i] > 0) { return true; } }
    this.painted = false;
    return false;
  };

  MaskEditor.prototype.changed = function () {
    el("mask-state").textContent = this.hasPaint()
      ? "Mask painted: only the pink area is repainted (inpainting)."
      : "No mask: the whole picture is repainted (image to image).";
    this.editor.dispatchEvent(new CustomEvent("maskchange", { bubbles: true }));
  };

  // Show `src` (an object URL or the remixed image's URL) and size the canvas to its proportions.
  MaskEditor.prototype.load = function (src) {
    var self = this;
    return new Promise(function (resolve, reject) {
      self.picture.onload = function () {
        var w = self.picture.naturalWidth, h = self.picture.naturalHeight;
        var up = Math.max(1, Math.ceil(MIN_SIDE / Math.max(w, h)));
        self.canvas.width = w * up;
        self.canvas.height = h * up;
        self.picture.classList.toggle("pixel", Math.max(w, h) <= 256);
        self.editor.hidden = false;
        self.clear();
        resolve({ width: w, height: h });
      };
      self.picture.onerror = function () { reject(new Error("not a picture the browser can show")); };
      self.picture.src = src;
    });
  };

  MaskEditor.prototype.hide = function () {
    this.editor.hidden = true;
    this.picture.removeAttribute("src");
    this.clear();
  };

  // The mask as a PNG Blob: white where painted, black elsewhere (null when nothing is painted).
  MaskEditor.prototype.toBlob = function () {
    if (!this.hasPaint()) { return Promise.resolve(null); }
    var out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    var ctx = out.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, out.width, out.height);
    var src = this.ctx.getImageData(0, 0, out.width, out.height);
    var dst = ctx.getImageData(0, 0, out.width, out.height);
    for (var i = 0; i < src.data.length; i += 4) {
      var v = src.data[i + 3] > 0 ? 255 : 0;
      dst.data[i] = dst.data[i + 1] = dst.data[i + 2] = v;
      dst.data[i + 3] = 255;
    }
    ctx.putImageData(dst, 0, 0);
    return new Promise(function (resolve) { out.toBlob(resolve, "image/png"); });
  };

  window.RetroMaskEditor = MaskEditor;
})();

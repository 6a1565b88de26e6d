// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var seedButton = document.getElementById("seed-random");
    if (seedButton) {
      seedButton.addEventListener("click", function () {
        var input = document.getElementById(seedButton.dataset.target);
        if (input) { input.value = "-1"; input.focus(); }
      });
    }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
    followModelDefaults();
    var generate = document.getElementById("generate-form");
    if (generate) {
      generate.addEventListener("submit", function () {
        var button = document.getElementById("generate-button");
        if (button) { button.disabled = true; button.textContent = "Submitting…"; }
      });
    }
  });

  // Picking a model sets size, steps and CFG to that model's defaults, except the fields the user typed in.
  function followModelDefaults() {
    var defaults = document.getElementById("model-defaults");
    var model = document.getElementById("id_model");
    if (!defaults || !model) { return; }
    defaults = JSON.parse(defaults.textContent);
    var hints = JSON.parse((document.getElementById("model-hints") || {}).textContent || "{}");
    var fields = ["width", "height", "steps", "guidance_scale"], typed = {};
    fields.forEach(function (name) {
      var input = document.getElementById("id_" + name);
      if (input) { input.addEventListener("input", function () { typed[name] = true; }); }
    });
    model.addEventListener("change", function () {
      var values = defaults[model.value];
      if (!values) { return; }
      fields.forEach(function (name) {
        var input = document.getElementById("id_" + name);
        if (input && !typed[name] && values[name] !== undefined) { input.value = values[name]; }
      });
      var help = document.querySelector("#field-model .help");  // forms.defaults_line, per model
      if (help) { help.textContent = hints[model.value] || ""; }
    });
  }
})();

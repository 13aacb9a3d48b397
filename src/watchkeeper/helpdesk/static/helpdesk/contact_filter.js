/* The contact picker of the ticket form offers only the chosen client's contacts: each
   option carries data-client; choosing another client hides the others (and clears a
   contact of another client). Without JavaScript the server narrows the list once a
   client is chosen and refuses a mismatch. */
(function () {
  "use strict";
  document.querySelectorAll("select[data-filter-by]").forEach(function (select) {
    var source = document.getElementById(select.dataset.filterBy);
    if (!source) return;
    var sync = function () {
      var client = source.value;
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) return;
        var mine = !client || option.dataset.client === client;
        option.hidden = !mine;
        option.disabled = !mine;
        if (!mine && option.selected) select.value = "";
      });
    };
    source.addEventListener("change", sync);
    sync();
  });
})();

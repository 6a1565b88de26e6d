"""Gallery pages: thin views over gallery.models / generator's ImageQuerySet; templates render the HTML."""

"""One module per resource the web app serves: its handlers (`routes`) and their OpenAPI operations (`paths`)."""

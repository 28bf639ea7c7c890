"""marketbus scorecard service: how every strategy's signals actually did."""

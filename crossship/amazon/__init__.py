"""Amazon Selling Partner API: the only part of crossship that talks to Amazon."""

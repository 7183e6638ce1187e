"""Week 9's lesson: prediction events, shipping to OpenSearch, drift, labelling and retraining."""

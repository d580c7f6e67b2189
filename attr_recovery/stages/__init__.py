"""The main job's attribute-recovery stages (decoding; significance and explanations) and their figures."""

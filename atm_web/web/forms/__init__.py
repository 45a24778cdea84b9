"""The pages' FlaskForm classes, one module per blueprint that uses them (common.py: what they share)."""

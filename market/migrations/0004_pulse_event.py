# PulseEvent (Market Pulse stress events). Depends on 0002 (there is no 0003);
# 0005_symbol_fyers_fields depends on this one.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0002_feed_state"),
    ]

    operations = [
        migrations.CreateModel(
            name="PulseEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("symbol", models.CharField(help_text="Ticker (kept as text: events outlive symbols)", max_length=64)),
                ("asset_class", models.CharField(max_length=16)),
                ("kind", models.CharField(choices=[("move_1m", "Move 1M"), ("move_5m", "Move 5M"),
                                                   ("vol_spike", "Vol Spike")], max_length=16)),
                ("time", models.FloatField(db_index=True, help_text="epoch seconds when it was detected")),
                ("value", models.FloatField(help_text="the return, or the volatility ratio of a spike")),
                ("threshold", models.FloatField()),
                ("message", models.CharField(max_length=200)),
            ],
            options={"ordering": ["-time"]},
        ),
    ]

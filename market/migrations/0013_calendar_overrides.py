from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('market', '0012_candle_partitions'),
    ]

    operations = [
        migrations.CreateModel(
            name='CalendarOverride',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('exchange', models.CharField(help_text='session code (NSE, MCX, US) or holiday market (XNSE)', max_length=16)),
                ('date', models.DateField(help_text='exchange-local date')),
                ('kind', models.CharField(choices=[('closed', 'closed all day'), ('special', 'special session')], default='closed', max_length=8)),
                ('open', models.TimeField(blank=True, help_text='special session: exchange-local open', null=True)),
                ('close', models.TimeField(blank=True, help_text='special session: exchange-local close', null=True)),
                ('note', models.CharField(blank=True, help_text='e.g. Muhurat trading; shown as the holiday name', max_length=200)),
            ],
            options={
                'ordering': ['date', 'exchange'],
                'indexes': [models.Index(fields=['date'], name='market_cale_date_055d32_idx')],
            },
        ),
    ]

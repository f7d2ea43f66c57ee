# NotifyChannel and NotifyDelivery (issue 13: alerts to apprise and e-mail). Numbered 0011 so the
# lead can re-chain it at merge (0010 is another branch's).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('market', '0010_drawings'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='NotifyChannel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('kind', models.CharField(choices=[('apprise', 'Apprise'), ('email', 'Email')], max_length=8)),
                ('target', models.CharField(help_text='apprise URL (secret) or e-mail address', max_length=1000)),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('alerts', models.ManyToManyField(blank=True, related_name='channels', to='market.alert')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notify_channels', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='NotifyDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(default='pending', help_text='pending, delivered or failed', max_length=16)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt', models.FloatField(db_index=True, default=0, help_text='epoch seconds of the next try')),
                ('last_error', models.CharField(blank=True, max_length=200)),
                ('channel', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='market.notifychannel')),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='market.alertevent')),
            ],
            options={
                'ordering': ['id'],
                'constraints': [models.UniqueConstraint(fields=('event', 'channel'), name='notify_delivery_once')],
            },
        ),
    ]

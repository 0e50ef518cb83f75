<?php
define('DB_HOST', 'localhost');
define('DB_NAME', 'shop');
